package logging_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/logging"
)

func TestRedaction(t *testing.T) {
	var buf bytes.Buffer
	red := &logging.Redactor{}
	red.Add("PkW64zMe5NVdrlPVNnjo2Jy9nOb7v1Xg", "s3cr3t-pass", "ab")
	recent := logging.NewRecent(4)
	for _, js := range []bool{false, true} {
		log := logging.New(&buf, logging.Options{Level: slog.LevelDebug, JSON: js, Redact: red, Recent: recent})
		log.Info("login with s3cr3t-pass", "password", "plain-text-pw", "api_token", "tok123456")
		log.With("secret_key", "zzz").Warn("failed", "err", errors.New("key PkW64zMe5NVdrlPVNnjo2Jy9nOb7v1Xg refused"), "about", "abcd")
	}
	out := buf.String()
	for _, leak := range []string{"PkW64zMe", "s3cr3t-pass", "plain-text-pw", "tok123456", "zzz"} {
		if strings.Contains(out, leak) {
			t.Fatalf("%q leaked:\n%s", leak, out)
		}
	}
	if !strings.Contains(out, "abcd") {
		t.Fatal("a 2-character secret must not scrub ordinary text")
	}
	es := recent.Entries()
	if len(es) != 2 || es[0].Level != "WARN" || strings.Contains(es[0].Attrs, "PkW64") || strings.Contains(es[0].Attrs, "zzz") {
		t.Fatalf("recent = %+v", es)
	}
}

func TestRecentRing(t *testing.T) {
	r := logging.NewRecent(3)
	log := logging.New(&bytes.Buffer{}, logging.Options{Recent: r})
	for _, m := range []string{"a", "b", "c", "d"} {
		log.Error(m)
	}
	es := r.Entries()
	if len(es) != 3 || es[0].Message != "d" || es[2].Message != "b" || r.Count() != 4 {
		t.Fatalf("entries = %+v", es)
	}
	if _, err := logging.ParseLevel("loud"); err == nil {
		t.Fatal("bad level accepted")
	}
}
