package doctor_test

import (
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
)

// TestGatewayLoginServerTrouble: Hesabe (or a proxy in front of it)
// answering 5xx or 429 is its own trouble, not the config's; the guide
// counts a 5xx as "no answer" and has the bridge retry by itself. doctor
// said "FAIL gateway.login: hesabe: login: HTTP 500: Internal server error
// occurred (retryable) — check the hesabe section of the config", sending
// the technician to edit settings that are right.
func TestGatewayLoginServerTrouble(t *testing.T) {
	for _, spec := range []string{"5xx:100", "429:100"} {
		t.Run(spec, func(t *testing.T) {
			s := newSetup(t)
			s.write(t)
			f, err := hesabesim.ParseFault(spec)
			if err != nil {
				t.Fatal(err)
			}
			s.sim.Inject(f)
			r := expect(t, s.run(t, doctor.Options{}), "gateway.login", doctor.Fail, "HTTP", "not the config")
			if strings.Contains(r.Fix, "check the hesabe section") {
				t.Errorf("fix blames the config: %q", r.Fix)
			}
		})
	}
}
