package config_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/config"
)

// A secret written unquoted with a leading '*' is read by YAML as an alias;
// yaml's error ("unknown anchor 'Pa55...' referenced") would print the
// secret on startup and in doctor. The error says what to do instead, without
// the value; so does a YAML tag (!!int) on a secret.
func TestSecretNotEchoedByYAMLErrors(t *testing.T) {
	const marker = "Pa55-ANCHOR-MARKER"
	for _, body := range []string{
		"hesabe:\n  password: *" + marker + "\n",
		"hesabe:\n  password: !!int " + marker + "\n",
		"hesabe:\n  password: !!binary " + marker + "\n",
	} {
		sec := write(t, "secrets.yaml", body, 0o600)
		p := write(t, "c.yaml", "secrets_file: "+sec+"\n", 0o600)
		_, err := config.Load(p)
		if err == nil {
			t.Errorf("%q accepted", body)
			continue
		}
		if strings.Contains(err.Error(), marker) || strings.Contains(err.Error(), "ANCHOR") {
			t.Errorf("secret in the error: %v", err)
		}
		if !strings.Contains(err.Error(), "hesabe.password") || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("error does not name the key and line: %v", err)
		}
		var ve *config.ValidationError
		if !errors.As(err, &ve) || ve.Field != "secrets_file" {
			t.Errorf("not a secrets_file error: %v", err)
		}

		p = write(t, "c.yaml", strings.Replace(body, "hesabe:\n  password", "api:\n  token", 1), 0o600)
		_, err = config.Load(p)
		if err == nil || strings.Contains(err.Error(), marker) || !strings.Contains(err.Error(), "api.token") {
			t.Errorf("config file %q: err = %v", body, err)
		}
	}
}
