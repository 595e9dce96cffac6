package doctor_test

import (
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/doctor"
)

// TestConfigMessages: what the config line says for a typo and a bad
// value. An unknown key read "config: unmarshal errors:; line 19: field
// pol_interval ..." (the YAML decoder's multi-line error, flattened with a
// stray ";"), and a bad value's fix sent the technician to
// docs/operations.md "lists them", which lists doctor's checks, not the
// config keys; the example config does.
func TestConfigMessages(t *testing.T) {
	t.Run("unknown key", func(t *testing.T) {
		s := newSetup(t)
		s.extra = "checkout:\n  pol_interval: 1s\n"
		s.write(t)
		r := expect(t, s.run(t, doctor.Options{}), "config", doctor.Fail, "pol_interval", "unknown keys are errors")
		if strings.Contains(r.Detail, ":;") {
			t.Errorf("detail: %q", r.Detail)
		}
	})
	t.Run("bad value", func(t *testing.T) {
		s := newSetup(t)
		s.extra = "log:\n  level: loud\n"
		s.write(t)
		r := expect(t, s.run(t, doctor.Options{}), "config", doctor.Fail, "log.level", "posbridge.example.yaml")
		if strings.Contains(r.Fix, "operations.md") {
			t.Errorf("fix points to operations.md, which does not list the keys: %q", r.Fix)
		}
	})
}
