//go:build !windows

package main

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestDemoConfigFile runs the commands that configs/demo.yaml's header
// comment tells a reader to run, as written there, with the real binary
// and socat: the Hesabe simulator, the pty pair, `posbridge run` on the
// file, the two simulated terminals, then `posbridge pay` on each lane
// and the status page's readiness. Only the fixed addresses and /tmp
// paths are moved to free ones, in the commands and the file alike, so
// the test does not depend on ports 8470, 8471, 8480 and 1883 being free.
func TestDemoConfigFile(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	if _, err := exec.LookPath("socat"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("socat is not installed (scripts/test.sh installs it)")
		}
		t.Skip("socat not installed")
	}
	src, err := os.ReadFile(filepath.Join("..", "..", "configs", "demo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	simAddr, apiAddr, diagAddr, brokerAddr := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	cfgPath := filepath.Join(dir, "demo.yaml")
	move := strings.NewReplacer("127.0.0.1:8480", simAddr, "127.0.0.1:8470", apiAddr, "127.0.0.1:8471", diagAddr,
		"127.0.0.1:1883", brokerAddr, "/tmp/posbridge-demo", filepath.Join(dir, "posbridge-demo"),
		"configs/demo.yaml", cfgPath)
	if err := os.WriteFile(cfgPath, []byte(move.Replace(string(src))), 0o600); err != nil {
		t.Fatal(err)
	}

	// The commands in the header: "#   posbridge ..." and "#   socat ...".
	cmdRe := regexp.MustCompile(`(?m)^#   ((?:posbridge|socat) .*)$`)
	var cmds []string
	for _, m := range cmdRe.FindAllStringSubmatch(string(src), -1) {
		c := move.Replace(m[1])
		if strings.HasPrefix(c, "posbridge ") {
			c = bin + strings.TrimPrefix(c, "posbridge")
		}
		cmds = append(cmds, c)
	}
	find := func(prefix string) []string {
		t.Helper()
		var out []string
		for _, c := range cmds {
			if strings.HasPrefix(strings.TrimPrefix(c, bin), prefix) {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			t.Fatalf("configs/demo.yaml's header has no %q command; it has:\n%s", prefix, strings.Join(cmds, "\n"))
		}
		return out
	}
	// sh runs each line as a reader would paste it; exec keeps the pid.
	start := func(c string) *proc { return startProc(t, "sh", "-c", "exec "+c) }

	start(find(" sim hesabe ")[0])
	waitFor(t, "hesabe simulator", 10*time.Second, func() bool { return dialable(simAddr) })
	start(find("socat ")[0])
	waitFor(t, "socat's pty pair", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "posbridge-demo-terminal"))
		return err == nil
	})
	run := find(" run ")
	if len(run) != 1 || !strings.Contains(run[0], "--config "+cfgPath) {
		t.Fatalf("the header's run command does not name configs/demo.yaml: %q", run)
	}
	start(run[0])
	waitFor(t, "till API", 15*time.Second, func() bool { return dialable(apiAddr) })
	terms := find(" sim terminal ")
	if len(terms) != 2 {
		t.Fatalf("want a sim terminal command per lane, have %q", terms)
	}
	for _, c := range terms {
		start(c)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	token := regexp.MustCompile(`(?m)^  token: (\S+)`).FindStringSubmatch(string(src))
	if token == nil {
		t.Fatal("configs/demo.yaml: no api token")
	}
	c := &api.Client{URL: "http://" + apiAddr, Token: token[1]}
	waitFor(t, "both terminals connected", 20*time.Second, func() bool {
		list, err := c.Terminals(ctx)
		if err != nil || len(list) != 2 {
			return false
		}
		return list[0].Connected && list[1].Connected
	})

	// The header's payment on lane 1, and the same on lane 2 (serial).
	pay := find(" pay ")[0]
	for _, c := range []string{pay, strings.Replace(pay, "--terminal 29708454", "--terminal 48515", 1)} {
		out, err := exec.CommandContext(ctx, "sh", "-c", c).CombinedOutput()
		if err != nil || !strings.Contains(string(out), " paid ") {
			t.Fatalf("%s: %v\n%s", c, err, out)
		}
	}
	resp, err := http.Get("http://" + diagAddr + "/readyz?token=" + token[1])
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz: %s", resp.Status)
	}
}
