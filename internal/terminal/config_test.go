package terminal_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/terminal"
	"github.com/posbridge/posbridge/internal/terminal/mqtt"
	"github.com/posbridge/posbridge/internal/terminal/serial"
)

func symlink(target, name string) error {
	os.Remove(name)
	return os.Symlink(target, name)
}

func TestConfigValidate(t *testing.T) {
	ser := &serial.PortSpec{Path: "/dev/ttyACM0"}
	for _, tc := range []struct {
		name  string
		cfg   terminal.Config
		field string
	}{
		{"NoLink", terminal.Config{Terminals: []terminal.TerminalConfig{{ID: "T1"}}}, "terminals[0]"},
		{"BadID", terminal.Config{Terminals: []terminal.TerminalConfig{{ID: "T/1", Serial: ser}}}, "terminals[0].terminal_id"},
		{"Twice", terminal.Config{Terminals: []terminal.TerminalConfig{{ID: "T1", Serial: ser}, {ID: "T1", Serial: ser}}}, "terminals[1].terminal_id"},
		{"NoBroker", terminal.Config{Terminals: []terminal.TerminalConfig{{ID: "T1", MQTT: true}}}, "mqtt"},
		{"NoClientID", terminal.Config{Terminals: []terminal.TerminalConfig{{ID: "T1", MQTT: true}}, MQTT: &mqtt.Config{BrokerURL: "tcp://x:1883"}}, "mqtt.client_id"},
		{"BadUSB", terminal.Config{Terminals: []terminal.TerminalConfig{{ID: "T1", Serial: &serial.PortSpec{USB: &serial.USBID{VID: "xyz", PID: "1"}}}}}, "terminals[0].serial"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var ce *terminal.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Fatalf("err = %v, want field %s", err, tc.field)
			}
		})
	}
	pw := terminal.Config{Terminals: []terminal.TerminalConfig{{ID: "T1", MQTT: true}},
		MQTT: &mqtt.Config{BrokerURL: "ftp://u:hunter2@x", ClientID: "b", Password: "hunter2"}}
	if err := pw.Validate(); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v: must fail without showing the password", err)
	}
}
