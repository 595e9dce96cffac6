package doctor_test

import (
	"os"
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

// TestConfigCompleteWithUnreadSecretsFile: a secrets file posbridge
// refuses (group-readable, or an unknown key) is not applied, so every
// secret in it counted as missing: "FAIL config.complete: posbridge run
// needs: hesabe.access_code: is required ... — set them in the config or
// the secrets file", although they are in the secrets file. The line now
// says the file was not read and points to the secrets_file line.
func TestConfigCompleteWithUnreadSecretsFile(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	os.Chmod(s.secretsPath, 0o644)
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "secrets_file", doctor.Fail, "mode 0644", "chmod 600")
	r := expect(t, rs, "config.complete", doctor.Fail, "the secrets file was not read (see secrets_file)", "fix the secrets file first")
	if strings.Contains(r.Fix, "set them in the config or the secrets file") {
		t.Errorf("fix asks for secrets that are in the secrets file: %q", r.Fix)
	}
}
