package service_test

import (
	"bufio"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/service"
)

var update = flag.Bool("update", false, "rewrite packaging/posbridge.service from service.Unit")

// directives parses a unit file into key → values (a key may repeat).
func directives(t *testing.T, unit string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Fatalf("unit line %q is not key=value", l)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	return out
}

func TestUnitHardened(t *testing.T) {
	d := directives(t, service.Unit(service.Config{}))
	want := map[string][]string{
		"Service.ExecStart":           {"/usr/bin/posbridge run --config /etc/posbridge/posbridge.yaml"},
		"Service.User":                {"posbridge"},
		"Service.Group":               {"posbridge"},
		"Service.SupplementaryGroups": {"dialout"},
		"Service.StateDirectory":      {"posbridge"},
		"Service.Restart":             {"on-failure"},
		"Service.TimeoutStopSec":      {"30"},
		"Service.NoNewPrivileges":     {"yes"},
		"Service.ProtectSystem":       {"strict"},
		"Service.ProtectHome":         {"yes"},
		"Service.PrivateTmp":          {"yes"},
		"Service.DevicePolicy":        {"closed"},
		"Service.DeviceAllow":         {"char-ttyACM rw", "char-ttyUSB rw", "char-ttyS rw"},
		"Service.Type":                {"simple"},
		"Install.WantedBy":            {"multi-user.target"},
	}
	for k, v := range want {
		if got := d[k]; !slices.Equal(got, v) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := d["Service.ReadWritePaths"]; ok {
		t.Error("ReadWritePaths set: the state directory must be the only writable path")
	}
}

func TestUnitQuoting(t *testing.T) {
	u := service.Unit(service.Config{Executable: "/opt/pos bridge/posbridge", ConfigPath: `/etc/pos 100%/$HOME.yaml`, User: "pb"})
	d := directives(t, u)
	want := `"/opt/pos bridge/posbridge" run --config "/etc/pos 100%%/$$HOME.yaml"`
	if got := d["Service.ExecStart"]; len(got) != 1 || got[0] != want {
		t.Errorf("ExecStart = %q, want %q", got, want)
	}
	if d["Service.User"][0] != "pb" {
		t.Errorf("User = %q", d["Service.User"])
	}
	if u2 := service.Unit(service.Config{Description: "x\nExecStartPre=/bin/rm"}); strings.Contains(u2, "\nExecStartPre") {
		t.Error("a newline in the description added a directive")
	}
}

// TestPackagedUnit: packaging/posbridge.service is what Unit renders, so
// the packages and `posbridge service install` install the same unit.
// Regenerate with: go test ./internal/service -run TestPackagedUnit -update
func TestPackagedUnit(t *testing.T) {
	path := filepath.Join("..", "..", "packaging", "posbridge.service")
	want := service.Unit(service.Config{})
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from service.Unit(Config{}); run: go test ./internal/service -run TestPackagedUnit -update", path)
	}
}

// TestUnitSystemdAnalyzeVerify runs `systemd-analyze verify` on the
// rendered unit. verify only warns (exit 0) on unknown keys, so any output
// about the unit fails the test. The executable must exist for verify, so
// the unit points at this test binary.
func TestUnitSystemdAnalyzeVerify(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("systemd is Linux only")
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze not found; scripts/test.sh installs the systemd package")
		}
		t.Skip("systemd-analyze not found (apt-get install systemd); the directive checks above still ran")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit := filepath.Join(dir, "posbridge.service")
	if err := os.WriteFile(unit, []byte(service.Unit(service.Config{Executable: exe})), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "verify", "--man=no", unit)
	out, err := cmd.CombinedOutput()
	var mine []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.Contains(l, "posbridge.service") {
			mine = append(mine, l)
		}
	}
	if err != nil || len(mine) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// The check is real: an unknown directive is reported.
	bad := filepath.Join(dir, "bad.service")
	os.WriteFile(bad, []byte(strings.Replace(service.Unit(service.Config{Executable: exe}), "PrivateTmp=yes", "PrivateTmp=yes\nProtectSystemz=strict", 1)), 0o644)
	out, _ = exec.Command(sa, "verify", "--man=no", bad).CombinedOutput()
	if !strings.Contains(string(out), "ProtectSystemz") {
		t.Fatalf("verify did not flag an unknown key: %s", out)
	}
}
