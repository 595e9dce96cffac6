package api_test

import (
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
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
