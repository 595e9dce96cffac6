package demo_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/demo"
	"github.com/posbridge/posbridge/internal/hesabe/hesabesim"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestStatusPageInBrowser loads the diagnostics page in a real headless
// Chromium, after a payment, and checks what a technician sees there.
func TestStatusPageInBrowser(t *testing.T) {
	bin, args := testutil.Chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := demo.Start(ctx, demo.Options{APIListen: "127.0.0.1:0", DiagListen: "127.0.0.1:0", Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer ccancel()
		_ = s.Close(cctx)
	}()
	if err := s.WaitTerminals(ctx); err != nil {
		t.Fatal(err)
	}
	c := s.Client()
	co, _, err := c.Create(ctx, "browser-1", api.CreateBody{TerminalID: demo.MQTTTerminal, Amount: "1.250"})
	if err != nil {
		t.Fatal(err)
	}
	if final, err := c.Follow(ctx, co.ID, func(pos.Checkout) {}); err != nil || final.State != pos.StatePaid {
		t.Fatalf("payment: %v %s", err, final.State)
	}

	dir := t.TempDir()
	shot := filepath.Join(dir, "status.png")
	args = append(args, "--window-size=1280,1600", "--timeout=4000")
	url := s.Daemon.DiagURL() + "/?token=" + s.Token
	cmdCtx, cmdCancel := context.WithTimeout(ctx, 60*time.Second)
	defer cmdCancel()
	dom, err := exec.CommandContext(cmdCtx, bin, append(args, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	page := string(dom)
	for _, want := range []string{
		"READY",                     // overall readiness badge
		"ok</span></td><td>gateway", // the gateway check, answered
		s.Sim.APIURL(),              // which gateway
		demo.MQTTTerminal, "mqtt",   // the MQTT terminal and its link
		"Queued (not yet sent)",              // the queue section
		"paid=1",                             // checkouts by state
		"Terminal frames (live)",             // the trace
		"invoice",                            // a traced invoice frame
		"Customers, installments and payees", // the request outbox section
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if s.SerialPort != "" && !strings.Contains(page, s.SerialPort) {
		t.Errorf("the page lacks the serial port %s", s.SerialPort)
	}
	m := hesabesim.SandboxMerchant()
	for _, secret := range []string{m.SecretKey, m.IVKey, m.AccessCode, m.Password, s.Token} {
		if strings.Contains(page, secret) {
			t.Fatalf("a secret is on the status page")
		}
	}
	// A screenshot, kept when the test fails, for a person to look at.
	if err := exec.CommandContext(cmdCtx, bin, append(args, "--screenshot="+shot, url)...).Run(); err != nil {
		t.Logf("screenshot: %v", err)
	}
	if keep := os.Getenv("POSBRIDGE_KEEP_SCREENSHOT"); keep != "" {
		b, _ := os.ReadFile(shot)
		_ = os.WriteFile(keep, b, 0o644)
	}
	// Without the token the page is refused.
	out, _ := exec.CommandContext(cmdCtx, bin, append(args, "--dump-dom", s.Daemon.DiagURL()+"/")...).Output()
	if strings.Contains(string(out), "READY") {
		t.Fatal("the page was shown without the token")
	}
}
