package doctor_test

import (
	"testing"

	"github.com/posbridge/posbridge/internal/doctor"
)

// TestEmbeddedBrokerOnLoopback: MQTT terminals are devices on the store
// network, and a broker listening on 127.0.0.1 accepts only programs on
// this PC. With the default (and sandbox.yaml's) mqtt.embedded.listen of
// 127.0.0.1:1883 a real terminal can never connect: the status page shows
// it DOWN, "last seen never", and doctor said only "skip mqtt.broker:
// embedded broker ... reachable only while posbridge runs", the line the
// troubleshooting guide sends the technician to.
func TestEmbeddedBrokerOnLoopback(t *testing.T) {
	s := newSetup(t) // embedded broker on a free 127.0.0.1 port
	s.write(t)
	expect(t, s.run(t, doctor.Options{}), "mqtt.broker", doctor.Warn,
		"embedded broker on "+s.mqttAddr+" listens on this PC's loopback only: a terminal on the store network cannot connect to it",
		"set mqtt.embedded.listen to 0.0.0.0:")

	for _, listen := range []string{"localhost:1883", `"[::1]:1883"`} { // quoted: [ starts a YAML list
		s.mqttAddr = listen
		s.write(t)
		expect(t, s.run(t, doctor.Options{}), "mqtt.broker", doctor.Warn, "loopback only", "mqtt.embedded.listen")
	}

	// On every interface it is reachable from the network: nothing to
	// warn about before posbridge runs.
	s.mqttAddr = "0.0.0.0:0"
	s.write(t)
	expect(t, s.run(t, doctor.Options{}), "mqtt.broker", doctor.Skip, "embedded broker on 0.0.0.0:0", "")
}
