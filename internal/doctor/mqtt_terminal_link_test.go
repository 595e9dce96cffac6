package doctor_test

import (
	"errors"
	"testing"

	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestMQTTTerminalLinkFollowsBroker: with the external broker down, doctor
// said "FAIL mqtt.broker: cannot connect", then "ok terminal 29708454 link:
// MQTT through tcp://..." and "FAIL terminal 29708454 ping: no answer:
// terminal: not connected — check that the terminal is on": an ok link
// and a terminal blamed for the broker's fault. The link line now fails
// naming the broker, and the ping is skipped.
func TestMQTTTerminalLinkFollowsBroker(t *testing.T) {
	s := newSetup(t)
	s.broker, s.mqttUser, s.mqttPass = "tcp://"+testutil.FreeAddr(t), "bridge", "mqtt-Secret-42" // nothing listens
	s.write(t)
	rs := s.run(t, doctor.Options{Pinger: fakePinger{errors.New("ping 29708454: terminal: not connected")}})
	expect(t, rs, "mqtt.broker", doctor.Fail, "connection refused", "start the broker")
	expect(t, rs, "terminal 29708454 link", doctor.Fail, "MQTT through "+s.broker+", which posbridge cannot use (see mqtt.broker)", "fix the broker first")
	expect(t, rs, "terminal 29708454 ping", doctor.Skip, "its link failed above", "")
}
