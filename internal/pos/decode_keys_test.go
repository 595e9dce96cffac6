package pos_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/pos"
)

// TestDecodeJSONKeysExact: a key that names a field in another case, or
// a key given twice in one object, is refused with the key's full path.
// encoding/json matched "AMOUNT" to amount and kept the last of two
// "amount"s, so a till's body could mean one thing to posbridge and
// another to the proxy or log that read it first.
func TestDecodeJSONKeysExact(t *testing.T) {
	for _, tc := range []struct{ name, body, field, says string }{
		{"case at the top", `{"Till_Ref":"x"}`, "Till_Ref", `"till_ref"`},
		{"case deep", `{"invoices":[{},{"items":[{"TITLE":"a"}]}]}`, "invoices[1].items[0].TITLE", `"title"`},
		{"twice at the top", `{"till_ref":"a","till_ref":"b"}`, "till_ref", "more than once"},
		{"twice deep", `{"invoices":[{},{"items":[{"title":"a","quantity":1,"title":"b"}]}]}`, "invoices[1].items[0].title", "more than once"},
		{"twice in a map", `{"invoices":[{"extra":{"a":1,"a":2}}]}`, "invoices[0].extra.a", "more than once"},
		{"twice in a raw value", `{"invoices":[{"amount":{"x":1,"x":2}}]}`, "invoices[0].amount.x", "more than once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v testBatch
			err := pos.DecodeJSON([]byte(tc.body), &v)
			var e *pos.Error
			if !errors.As(err, &e) || e.Code != pos.EInvalid {
				t.Fatalf("err = %v, want an invalid-field error", err)
			}
			if e.Field != tc.field || !strings.Contains(e.Message, tc.says) {
				t.Fatalf("field %q: %s; want field %q saying %s", e.Field, e.Message, tc.field, tc.says)
			}
		})
	}
	for _, body := range []string{
		`{"till_ref":"x","invoices":[{"amount":"1","items":[{"title":"a"},{"title":"b"}]},{"amount":"2"}]}`,
		`{"invoices":[{"extra":{"a":1,"A":2}}]}`, // map keys are data: any case
		`{"note":null,"invoices":[]}`,
	} {
		var v testBatch
		if err := pos.DecodeJSON([]byte(body), &v); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}
