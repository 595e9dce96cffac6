package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/user"
	"runtime"
	"syscall"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/service"
)

// runDoctor checks the installation; exit 0 only when no check failed.
func runDoctor(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "doctor", "doctor [--config FILE] [--json] [--service-user NAME]")
	cfgPath := fs.String("config", defaultConfigPath(), "config file to check")
	asJSON := fs.Bool("json", false, "machine-readable output")
	svcUser := fs.String("service-user", defaultServiceUser(), "account the service runs as: files and serial ports are checked for it too (\"\" to skip)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	rs := doctor.Run(ctx, doctor.Options{ConfigPath: *cfgPath, ServiceUser: *svcUser, Pinger: daemonPinger{cfgPath: *cfgPath}})
	var err error
	if *asJSON {
		err = doctor.WriteJSON(e.stdout, rs)
	} else {
		err = doctor.WriteText(e.stdout, rs)
	}
	if err != nil {
		return fail(e, "doctor: %v", err)
	}
	if doctor.Failed(rs) {
		return exitFailure
	}
	return exitOK
}

// defaultServiceUser is the packaged service user when it exists here.
func defaultServiceUser() string {
	if runtime.GOOS == "windows" {
		return ""
	}
	if _, err := user.Lookup(service.LinuxUser); err != nil {
		return ""
	}
	return service.LinuxUser
}

// daemonPinger pings terminals through the running bridge's diagnostics
// endpoint: the bridge owns the serial ports and the MQTT session, so the
// doctor asks it rather than opening the links itself.
type daemonPinger struct{ cfgPath string }

func (p daemonPinger) Ping(ctx context.Context, t config.Terminal) (time.Duration, error) {
	cfg, err := config.Load(p.cfgPath)
	if err != nil {
		return 0, err
	}
	token := cfg.Diagnostics.Token.Value()
	if token == "" {
		token = cfg.API.Token.Value()
	}
	u := "http://" + loopbackAddr(cfg.Diagnostics.Listen) + "/terminals/" + url.PathEscape(t.ID) + "/ping"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return 0, doctor.ErrNotRunning
		}
		if ctx.Err() != nil {
			// The bridge waits longer for the pong than doctor does: the
			// one that gave up is doctor, on a terminal that is silent.
			return 0, fmt.Errorf("the terminal did not answer within %s (asked through the running posbridge, whose link to it is up)",
				time.Since(start).Round(100*time.Millisecond))
		}
		return 0, fmt.Errorf("ask the running posbridge: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusUnauthorized {
		return 0, doctor.ErrDiagnosticsToken
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return 0, errors.New(e.Error)
		}
		return 0, fmt.Errorf("diagnostics endpoint answered HTTP %d", resp.StatusCode)
	}
	return time.Since(start), nil
}
