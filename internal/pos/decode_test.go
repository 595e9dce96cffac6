package pos_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
)

type testItem struct {
	Title    string `json:"title"`
	Quantity int    `json:"quantity"`
}

type testInvoice struct {
	Amount       json.RawMessage `json:"amount"`
	Total        pos.Money       `json:"total"`
	PaymentTypes []int           `json:"payment_types"`
	Items        []testItem      `json:"items"`
	Extra        map[string]int  `json:"extra"`
}

type testBase struct {
	TillRef string `json:"till_ref"`
}

type testBatch struct {
	testBase
	Invoices []testInvoice `json:"invoices"`
	Note     *string       `json:"note"`
}

// TestDecodeJSONFieldPaths: a wrong type or an unknown field deep in a
// till's body is named by its full path, array indexes included. The
// decoder named "invoices.items.quantity", or for an unknown field only
// its key, so a till with a batch of a hundred invoices could not tell
// which one was wrong.
func TestDecodeJSONFieldPaths(t *testing.T) {
	for _, tc := range []struct{ name, body, field string }{
		{"type in an array of ints", `{"invoices":[{"amount":"1"},{"amount":"2","payment_types":[1,"2"]}]}`, "invoices[1].payment_types[1]"},
		{"type in a nested object", `{"invoices":[{},{},{"items":[{"title":"a"},{"title":"b","quantity":1.5}]}]}`, "invoices[2].items[1].quantity"},
		{"object for a list", `{"invoices":[{},{"items":{"title":"x"}}]}`, "invoices[1].items"},
		{"string for a list", `{"till_ref":"r","invoices":"x"}`, "invoices"},
		{"type at the top", `{"till_ref":5}`, "till_ref"},
		{"type after skipped values", `{"invoices":[{"amount":{"deep":[1,{"x":[]}]},"extra":{"a":1,"b":[2]}}]}`, "invoices[0].extra.b"},
		{"unknown at the top", `{"invoices":[],"tip":1}`, "tip"},
		{"unknown in an element", `{"invoices":[{"amount":"1"},{"amount":"2","tip":1}]}`, "invoices[1].tip"},
		{"unknown named like a field elsewhere", `{"invoices":[{"items":[{"title":"a","amount":"1"}]}]}`, "invoices[0].items[0].amount"},
		{"unknown after a known one of its name", `{"invoices":[{"amount":"1","items":[{"title":"a"},{"payment_types":[1]}]}]}`, "invoices[0].items[1].payment_types"},
		{"empty key skipped", `{"invoices":[{"extra":{"":1,"b":"x"}}]}`, "invoices[0].extra.b"},
		{"unknown empty key", `{"invoices":[{"items":[{"":1}]}]}`, `invoices[0].items[0].""`},
		{"key case folded", `{"Invoices":[{"Items":[{"TITLE":"a","Quantity":"x"}]}]}`, "Invoices[0].Items[0].Quantity"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v testBatch
			err := pos.DecodeJSON([]byte(tc.body), &v)
			var e *pos.Error
			if !errors.As(err, &e) || e.Code != pos.EInvalid {
				t.Fatalf("err = %v", err)
			}
			if e.Field != tc.field {
				t.Fatalf("field %q (%s), want %q", e.Field, e.Message, tc.field)
			}
		})
	}
}

// FuzzDecodeJSON: whatever the body, DecodeJSON answers a *Error naming a
// field, or nothing; finding a field's path never panics.
func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"invoices":[{"items":[{"quantity":1.5}]}]}`, `{"invoices":[{"tip":1}]}`, `{"":{"":[]}}`, `[`, `{"invoices":[[{}]]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v testBatch
		if err := pos.DecodeJSON(body, &v); err != nil {
			var e *pos.Error
			if !errors.As(err, &e) || e.Field == "" || e.Message == "" {
				t.Fatalf("error without a field: %#v", err)
			}
		}
	})
}
