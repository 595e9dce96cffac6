package protocol_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// The golden messages in testdata/ are the examples in
// docs/terminal-protocol.md; a terminal developer can test against them.
func TestGoldenMessages(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden messages: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := protocol.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if want := strings.TrimSuffix(filepath.Base(f), ".json"); string(m.Kind) != want {
				t.Errorf("kind %q, file named %q", m.Kind, want)
			}
			enc, err := protocol.Encode(m)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			again, err := protocol.Decode(enc)
			if err != nil {
				t.Fatalf("Decode(Encode): %v", err)
			}
			enc2, _ := protocol.Encode(again)
			if !bytes.Equal(enc, enc2) {
				t.Errorf("not stable:\n%s\n%s", enc, enc2)
			}
		})
	}
}

func TestInvoiceAmountOnTheWire(t *testing.T) {
	g := protocol.NewIDGen("b")
	m := g.New(protocol.KindInvoice, "T-1")
	m.Invoice = &protocol.Invoice{TransactionID: "tx1", Amount: 100}
	b, err := protocol.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"amount":"0.100"`)) {
		t.Fatalf("amount not a 3-decimal string: %s", b)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		err      error
		ref      string
	}{
		{"Syntax", `{"v":1,`, protocol.ErrSyntax, ""},
		{"Trailing", `{"v":1,"kind":"ping","id":"a","terminal_id":"T"} {}`, protocol.ErrSyntax, ""},
		{"Version", `{"v":2,"kind":"ping","id":"a1","terminal_id":"T"}`, protocol.ErrUnsupportedVersion, "a1"},
		{"Kind", `{"v":1,"kind":"reboot","id":"a2","terminal_id":"T"}`, protocol.ErrUnsupportedKind, "a2"},
		{"NoID", `{"v":1,"kind":"ping","terminal_id":"T"}`, protocol.ErrInvalid, ""},
		{"SlashInID", `{"v":1,"kind":"ping","id":"a/b","terminal_id":"T"}`, protocol.ErrInvalid, ""},
		{"AckNoRef", `{"v":1,"kind":"ack","id":"a3","terminal_id":"T"}`, protocol.ErrInvalid, "a3"},
		{"InvoiceNoBody", `{"v":1,"kind":"invoice","id":"a4","terminal_id":"T"}`, protocol.ErrInvalid, "a4"},
		{"TwoBodies", `{"v":1,"kind":"cancel","id":"a5","terminal_id":"T","cancel":{"transaction_id":"x"},"status":{"state":"idle"}}`, protocol.ErrInvalid, "a5"},
		{"AmountPrecision", `{"v":1,"kind":"invoice","id":"a6","terminal_id":"T","invoice":{"transaction_id":"x","amount":"1.0001"}}`, protocol.ErrInvalid, "a6"},
		{"AmountZero", `{"v":1,"kind":"invoice","id":"a7","terminal_id":"T","invoice":{"transaction_id":"x","amount":"0.000"}}`, protocol.ErrInvalid, "a7"},
		{"Outcome", `{"v":1,"kind":"result","id":"a8","terminal_id":"T","result":{"transaction_id":"x","outcome":"maybe"}}`, protocol.ErrInvalid, "a8"},
		{"TooLarge", `{"v":1,"pad":"` + strings.Repeat("x", protocol.MaxMessageSize) + `"}`, protocol.ErrTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := protocol.Decode([]byte(tc.in))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.ref != "" {
				r := protocol.NewIDGen("b").Refusal(m, "T", err)
				if r.Ref != tc.ref || r.Validate() != nil {
					t.Errorf("refusal %+v (valid: %v)", r, r.Validate())
				}
			}
		})
	}
}

// TestResultNullFields: null stands for an absent optional field,
// amount included; a bad amount is still refused.
func TestResultNullFields(t *testing.T) {
	m, err := protocol.Decode([]byte(`{"v":1,"kind":"result","id":"r1","terminal_id":"T","ref":null,"ts":null,` +
		`"result":{"transaction_id":"x","invoice_number":null,"outcome":"approved","reference":null,"reason":null,"amount":null}}`))
	if err != nil || m.Result.Amount != 0 || m.Result.Outcome != "approved" {
		t.Fatalf("%+v, %v", m.Result, err)
	}
	m, err = protocol.Decode([]byte(`{"v":1,"kind":"result","id":"r2","terminal_id":"T","result":{"transaction_id":"x","outcome":"declined","amount":0.25}}`))
	if err != nil || m.Result.Amount != 250 {
		t.Fatalf("%+v, %v", m.Result, err)
	}
	for _, bad := range []string{`"1.0001"`, `"x"`, `{}`, `[]`, `true`} {
		_, err := protocol.Decode([]byte(`{"v":1,"kind":"result","id":"r3","terminal_id":"T","result":{"transaction_id":"x","outcome":"approved","amount":` + bad + `}}`))
		if !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("amount %s: %v, want ErrInvalid", bad, err)
		}
	}
}

func TestUnknownFieldsIgnored(t *testing.T) {
	m, err := protocol.Decode([]byte(`{"v":1,"kind":"status","id":"t1","terminal_id":"T","status":{"state":"busy","battery":80},"extra":true}`))
	if err != nil || m.Status.State != protocol.StateBusy {
		t.Fatalf("%+v, %v", m, err)
	}
}

func TestSeen(t *testing.T) {
	s := protocol.NewSeen(2)
	if !s.Add("T", "a") || s.Add("T", "a") || !s.Add("U", "a") {
		t.Fatal("dedupe per key")
	}
	s.Add("T", "b")
	s.Add("T", "c") // forgets a
	if s.Has("T", "a") || !s.Has("T", "b") || !s.Has("T", "c") {
		t.Fatal("bounded memory")
	}
}

func TestIDGenUnique(t *testing.T) {
	a, b := protocol.NewIDGen("b"), protocol.NewIDGen("b")
	if a.Next() == b.Next() {
		t.Fatal("two generators gave the same first id")
	}
	if id := a.Next(); !protocol.ValidID(id) {
		t.Fatalf("invalid id %q", id)
	}
}

// FuzzDecode: Decode never panics, and whatever it accepts encodes back to
// something that decodes to the same bytes again.
func FuzzDecode(f *testing.F) {
	if files, _ := filepath.Glob("testdata/*.json"); len(files) > 0 {
		for _, p := range files {
			b, _ := os.ReadFile(p)
			f.Add(b)
		}
	}
	f.Add([]byte(`{"v":1,"kind":"ack","id":"x","terminal_id":"T","ref":"y"}`))
	f.Add([]byte(`{"v":1,"kind":"invoice","id":"x","terminal_id":"T","invoice":{"transaction_id":"t","amount":0.5}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := protocol.Decode(b)
		if err != nil {
			return
		}
		enc, err := protocol.Encode(m)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", b, err)
		}
		m2, err := protocol.Decode(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		enc2, err := protocol.Encode(m2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable: %s vs %s (%v)", enc, enc2, err)
		}
	})
}
