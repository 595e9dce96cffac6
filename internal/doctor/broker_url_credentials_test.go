package doctor_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestBrokerURLCredentialsNotShown: a password written into mqtt.broker
// (which the config check refuses, and which doctor must still report
// on) is not printed by any check. Before, the terminal's link line read
// "MQTT through tcp://bridge:<password>@127.0.0.1:…".
func TestBrokerURLCredentialsNotShown(t *testing.T) {
	s := newSetup(t)
	const inURL = "url-Pass-9931"
	addr := testutil.FreeAddr(t) // nothing listens
	s.broker, s.mqttUser, s.mqttPass = "tcp://bridge:"+inURL+"@"+addr, "bridge", "mqtt-Secret-42"
	s.write(t)
	rs := s.run(t, doctor.Options{Pinger: fakePinger{errors.New("ping 29708454: terminal: not connected")}})
	expect(t, rs, "terminal 29708454 link", doctor.Fail, "MQTT through tcp://"+addr+", which posbridge cannot use", "")
	for _, r := range rs {
		if strings.Contains(r.Detail+r.Fix, inURL) {
			t.Errorf("%s shows the broker URL's password: %q (fix %q)", r.Name, r.Detail, r.Fix)
		}
	}
}
