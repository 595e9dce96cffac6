package logging_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/logging"
)

// The diagnostics page's recent errors redact by key inside groups too,
// as the log itself does: a token that is not a configured secret (a
// gateway's access token) under a group never reaches the page.
func TestRecentRedactsSecretKeysInGroups(t *testing.T) {
	var buf bytes.Buffer
	recent := logging.NewRecent(4)
	log := logging.New(&buf, logging.Options{Recent: recent, Redact: &logging.Redactor{}})
	log.Warn("login failed", slog.Group("gateway", "access_token", "bearer-abc-123456", "op", "login"))
	log.WithGroup("hesabe").Warn("refused", "password", "pw-7890-xyz", "code", 504)
	es := recent.Entries()
	if len(es) != 2 {
		t.Fatalf("entries = %+v", es)
	}
	all := es[0].Attrs + " " + es[1].Attrs
	for _, leak := range []string{"bearer-abc-123456", "pw-7890-xyz"} {
		if strings.Contains(all, leak) || strings.Contains(buf.String(), leak) {
			t.Errorf("%q kept: recent %q; log %s", leak, all, buf.String())
		}
	}
	if !strings.Contains(es[1].Attrs, "op=login") || !strings.Contains(es[0].Attrs, "code=504") {
		t.Errorf("ordinary attributes lost: %q", all)
	}
}
