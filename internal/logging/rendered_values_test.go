package logging_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/logging"
)

// account is a value whose String hides its key but whose exported fields
// do not: the JSON handler logs the fields, not String.
type account struct {
	User string
	Key  string
}

func (a account) String() string { return "account{" + a.User + "}" }

// A registered secret is scrubbed from what the handler actually writes,
// not only from the value's String: a struct under the JSON handler (its
// fields), and a []byte (written as text by the text handler, as base64 by
// the JSON handler).
func TestSecretsScrubbedFromRenderedValues(t *testing.T) {
	const secret = "SECRET-MARKER-IN-VALUE-42"
	red := &logging.Redactor{}
	red.Add(secret)
	for _, js := range []bool{false, true} {
		var buf bytes.Buffer
		log := logging.New(&buf, logging.Options{Level: slog.LevelDebug, JSON: js, Redact: red})
		log.Info("call", "acct", account{User: "u", Key: secret}, "body", []byte("x "+secret+" y"))
		h := slog.New(logging.Wrap(slog.NewJSONHandler(&buf, nil), red))
		h.Info("call", "acct", account{User: "u", Key: secret}, "body", []byte("x "+secret+" y"))
		out := buf.String()
		for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte("x " + secret + " y"))} {
			if strings.Contains(out, form) {
				t.Errorf("json=%v: %q in\n%s", js, form, out)
			}
		}
		if !strings.Contains(out, "call") {
			t.Fatalf("nothing logged:\n%s", out)
		}
	}
}
