package doctor_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/doctor"
)

// configPinger fails as the real one (cmd/posbridge) does when the config
// does not load: it reads the diagnostics address and token from it.
type configPinger struct{ path string }

func (p configPinger) Ping(ctx context.Context, t config.Terminal) (time.Duration, error) {
	if _, err := config.Load(p.path); err != nil {
		return 0, err
	}
	return 0, errors.New("unexpected ping")
}

// TestPingSkippedWhenConfigInvalid: with a config that parses but does
// not validate (here a secret key of the wrong length), every terminal's
// ping line used to be "FAIL terminal 48515 ping: no answer: config:
// hesabe.secret_key: must be 32 characters (got 5) — check that the
// terminal is on, the posbridge app is running on it and paired": the
// config's error again, blamed on the terminal. The ping is skipped and
// points to the config line instead.
func TestPingSkippedWhenConfigInvalid(t *testing.T) {
	s := newSetup(t)
	s.extra = "log:\n  level: loud\n"
	s.write(t)
	rs := s.run(t, doctor.Options{Pinger: configPinger{s.cfgPath}})
	expect(t, rs, "config", doctor.Fail, "log.level", "")
	r := expect(t, rs, "terminal 29708454 ping", doctor.Skip, "the config has errors (see the config and secrets_file lines)", "")
	if r.Fix != "" {
		t.Errorf("a skipped ping carries a fix: %q", r.Fix)
	}
}

// TestPingSkippedWhenSecretsFileBroken: the config itself validates but
// its secrets file does not load (an unknown key), so posbridge run would
// not start and the ping could not find the diagnostics token either.
func TestPingSkippedWhenSecretsFileBroken(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	if err := os.WriteFile(s.secretsPath, []byte("hesabe:\n  pasword: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := s.run(t, doctor.Options{Pinger: configPinger{s.cfgPath}})
	expect(t, rs, "secrets_file", doctor.Fail, "pasword", "")
	expect(t, rs, "terminal 29708454 ping", doctor.Skip, "the config has errors", "")
}

// TestPingDiagnosticsTokenRefused: the running bridge refuses the
// diagnostics token in the config (changed since it started). The ping
// line said "FAIL ... no answer: diagnostics endpoint answered HTTP 401 —
// check that the terminal is on"; it is a warning that names the token.
func TestPingDiagnosticsTokenRefused(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	rs := s.run(t, doctor.Options{Pinger: fakePinger{doctor.ErrDiagnosticsToken}})
	expect(t, rs, "terminal 29708454 ping", doctor.Warn, "refused the diagnostics token", "restart posbridge")
}
