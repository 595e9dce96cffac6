package api_test

import (
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/requests"
)

type openAPI struct {
	Paths      map[string]map[string]any `yaml:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `yaml:"properties"`
			Enum       []string       `yaml:"enum"`
		} `yaml:"schemas"`
	} `yaml:"components"`
}

func loadSpec(t *testing.T) openAPI {
	t.Helper()
	b, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var spec openAPI
	if err := yaml.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	return spec
}

// TestOpenAPIRoutes: the spec documents exactly the routes the server has.
func TestOpenAPIRoutes(t *testing.T) {
	spec := loadSpec(t)
	var documented []string
	for path, ops := range spec.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := api.Routes()
	sort.Strings(documented)
	sort.Strings(served)
	if !reflect.DeepEqual(documented, served) {
		t.Fatalf("openapi.yaml documents\n%v\nthe server serves\n%v", documented, served)
	}
}

// TestOpenAPISchemas: the Checkout schema names every JSON field the API
// sends, the State enum lists every state, the request schema every field
// the decoder accepts.
func TestOpenAPISchemas(t *testing.T) {
	spec := loadSpec(t)
	props := spec.Components.Schemas["Checkout"].Properties
	typ := reflect.TypeOf(pos.Checkout{})
	for i := range typ.NumField() {
		tag := strings.Split(typ.Field(i).Tag.Get("json"), ",")[0]
		if tag == "" || tag == "-" {
			continue
		}
		if _, ok := props[tag]; !ok {
			t.Errorf("Checkout field %q is not in openapi.yaml", tag)
		}
	}
	var states []string
	for _, s := range pos.States {
		states = append(states, string(s))
	}
	if got := spec.Components.Schemas["State"].Enum; !reflect.DeepEqual(got, states) {
		t.Errorf("State enum = %v, want %v", got, states)
	}
	req := spec.Components.Schemas["CheckoutRequest"].Properties
	for _, f := range []string{"terminal_id", "amount", "till_ref", "description", "customer", "deadline_seconds"} {
		if _, ok := req[f]; !ok {
			t.Errorf("CheckoutRequest lacks %q", f)
		}
	}
	var codes []string
	for _, c := range []pos.Code{pos.EInvalid, pos.EUnauthorized, pos.ENotFound, pos.EConflict, pos.ELimit, pos.EUnavailable, pos.EInternal} {
		codes = append(codes, string(c))
	}
	b, _ := os.ReadFile("../../docs/openapi.yaml")
	if !strings.Contains(string(b), "enum: ["+strings.Join(codes, ", ")+"]") {
		t.Errorf("error code enum does not list %v", codes)
	}
}

// TestOpenAPIRequestSchemas: the request kinds' schemas name every JSON
// field the bridge reads and sends.
func TestOpenAPIRequestSchemas(t *testing.T) {
	spec := loadSpec(t)
	check := func(schema string, v any) {
		t.Helper()
		props := spec.Components.Schemas[schema].Properties
		if props == nil {
			t.Errorf("openapi.yaml has no schema %s", schema)
			return
		}
		typ := reflect.TypeOf(v)
		fields := jsonFields(typ)
		for _, tag := range fields {
			if _, ok := props[tag]; !ok {
				t.Errorf("%s field %q is not in schema %s", typ, tag, schema)
			}
		}
		for name := range props {
			if !slices.Contains(fields, name) {
				t.Errorf("schema %s documents %q, which %s does not have", schema, name, typ)
			}
		}
	}
	check("Request", pos.Request{})
	check("RequestError", pos.RequestError{})
	check("CustomerRequest", requests.CustomerInput{})
	check("CustomerResult", requests.CustomerResult{})
	check("InstallmentsRequest", requests.InstallmentsInput{})
	check("InstallmentInvoice", requests.InstallmentInvoice{})
	check("PayeeRequest", requests.PayeeInput{})
	check("PayeeResult", requests.PayeeResult{})
	var states []string
	for _, s := range pos.RequestStates {
		states = append(states, string(s))
	}
	if got := spec.Components.Schemas["RequestState"].Enum; !reflect.DeepEqual(got, states) {
		t.Errorf("RequestState enum = %v, want %v", got, states)
	}
}

// jsonFields lists a struct's JSON field names, embedded structs' included.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		tag := strings.Split(f.Tag.Get("json"), ",")[0]
		switch {
		case f.Anonymous && tag == "":
			out = append(out, jsonFields(f.Type)...)
		case tag != "" && tag != "-":
			out = append(out, tag)
		}
	}
	return out
}
