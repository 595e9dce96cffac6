package demo_test

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
)

// TestConfigFileMatchesDemo checks that configs/demo.yaml is what
// `posbridge demo` runs: the config the demo stack really builds, against
// the file as `posbridge run` loads it. Only what has to differ may differ
// (data_dir, the listen ports, the token, the pty path, the simulator's
// port), and those must still be loopback and the simulator.
func TestConfigFileMatchesDemo(t *testing.T) {
	// The file is loaded as `posbridge run` does; secrets from the
	// environment would override it, so none are set here.
	for _, env := range []string{config.EnvAccessCode, config.EnvSecretKey, config.EnvIVKey, config.EnvPassword,
		config.EnvAPIToken, config.EnvDiagToken, config.EnvMQTTPass, config.EnvHitPayKey, config.EnvPayoutKey} {
		t.Setenv(env, "")
	}
	file, err := config.Load(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := file.RequireRun(); err != nil {
		t.Fatalf("configs/demo.yaml is not enough for posbridge run: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := demo.Start(ctx, demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		if err := s.Close(cctx); err != nil {
			t.Error(err)
		}
	}()
	code := s.Config

	// The terminals: same ids, names and links, in the same order, and
	// known to the simulator. The demo leaves the serial one out where
	// there are no ptys.
	wantTerms := code.Terminals
	if s.SerialPort == "" {
		if len(file.Terminals) != 2 || file.Terminals[1].ID != demo.SerialTerminal {
			t.Fatalf("configs/demo.yaml terminals = %+v", file.Terminals)
		}
		file.Terminals = file.Terminals[:1]
	}
	if len(file.Terminals) != len(wantTerms) {
		t.Fatalf("terminals: file %+v, demo %+v", file.Terminals, wantTerms)
	}
	known := map[string]bool{}
	for _, st := range hesabesim.SandboxMerchant().Terminals {
		known[st.TerminalID] = true
	}
	for i, ft := range file.Terminals {
		if !known[ft.ID] {
			t.Errorf("terminals[%d].id %s: the simulator does not know it", i, ft.ID)
		}
		if ft.Link == "serial" && ft.Serial.Port == "" {
			t.Errorf("terminals[%d]: a serial terminal without serial.port", i)
		}
	}

	// The gateway: the simulator's API on loopback, with its credentials
	// (the demo's are the simulator's own; compared below).
	for k, u := range map[string]string{"merchant_url": file.Hesabe.MerchantURL, "payment_url": file.Hesabe.PaymentURL} {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "http" || !loopback(pu.Host) || pu.Path != "/api" {
			t.Errorf("hesabe.%s = %q: want the simulator's API, http://127.0.0.1:PORT/api", k, u)
		}
	}
	if file.Hesabe.MerchantURL != file.Hesabe.PaymentURL {
		t.Errorf("hesabe: merchant_url %s and payment_url %s: the simulator serves both at one address", file.Hesabe.MerchantURL, file.Hesabe.PaymentURL)
	}

	// The listeners: loopback, the demo's default ports, one token for both.
	for k, addr := range map[string]string{"api.listen": file.API.Listen, "diagnostics.listen": file.Diagnostics.Listen,
		"mqtt.embedded.listen": file.MQTT.Embedded.Listen, "demo api": code.API.Listen, "demo diagnostics": code.Diagnostics.Listen,
		"demo mqtt": code.MQTT.Embedded.Listen} {
		if !loopback(addr) {
			t.Errorf("%s = %q: not on loopback", k, addr)
		}
	}
	if file.API.Listen != "127.0.0.1:8470" || file.Diagnostics.Listen != "127.0.0.1:8471" {
		t.Errorf("api.listen %s, diagnostics.listen %s: the demo's defaults are 127.0.0.1:8470 and 127.0.0.1:8471",
			file.API.Listen, file.Diagnostics.Listen)
	}
	if file.API.Token == "" || file.Diagnostics.Token != file.API.Token {
		t.Errorf("the demo uses one token for the till API and diagnostics; the file's differ or are empty")
	}

	// Everything else must be equal: blank out what may differ, compare
	// the rest whole, so a setting changed on one side only shows here.
	norm := func(c config.Config) config.Config {
		c.DataDir = ""
		c.Hesabe.MerchantURL, c.Hesabe.PaymentURL = "", ""
		c.API.Listen, c.API.Token = "", ""
		c.Diagnostics.Listen, c.Diagnostics.Token = "", ""
		c.MQTT.Embedded.Listen = ""
		c.Terminals = append([]config.Terminal(nil), c.Terminals...)
		for i := range c.Terminals {
			c.Terminals[i].Serial.Port = ""
		}
		return c
	}
	for _, diff := range differences("", reflect.ValueOf(norm(file)), reflect.ValueOf(norm(code))) {
		t.Errorf("configs/demo.yaml / posbridge demo differ: %s", diff)
	}
}

// differences names the settings (by YAML key) where a and b differ, with
// both values unless they are secrets.
func differences(at string, a, b reflect.Value) []string {
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return nil
	}
	if a.Kind() == reflect.Struct && a.Type() != reflect.TypeOf(config.Amount{}) {
		var out []string
		for i := 0; i < a.NumField(); i++ {
			key := strings.Split(a.Type().Field(i).Tag.Get("yaml"), ",")[0]
			if at != "" {
				key = at + "." + key
			}
			out = append(out, differences(key, a.Field(i), b.Field(i))...)
		}
		return out
	}
	if a.Type() == reflect.TypeOf(config.Secret("")) {
		return []string{at + " (a secret)"}
	}
	if da, ok := a.Interface().(config.Duration); ok {
		return []string{fmt.Sprintf("%s = %s / %s", at, da.D(), b.Interface().(config.Duration).D())}
	}
	return []string{fmt.Sprintf("%s = %+v / %+v", at, a.Interface(), b.Interface())}
}

func loopback(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
