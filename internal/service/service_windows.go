//go:build windows

package service

import (
	"fmt"
	"log/slog"
	"os"

	ksvc "github.com/kardianos/service"
)

// DefaultUser is "": the service runs as LocalSystem unless --user names
// another account.
const DefaultUser = ""

// platformOptions: automatic (delayed) start, and restart by the Service
// Control Manager after a failure: 5 s, then again; the failure count
// resets after a day.
func platformOptions(c Config, kc *ksvc.Config) {
	kc.Option[ksvc.StartType] = ksvc.ServiceStartAutomatic
	kc.Option["DelayedAutoStart"] = true
	kc.Option[ksvc.OnFailure] = ksvc.OnFailureRestart
	kc.Option[ksvc.OnFailureDelayDuration] = "5s"
	kc.Option[ksvc.OnFailureResetPeriod] = 86400
}

func preInstall(c Config) error {
	if c.ConfigPath != "" {
		if _, err := os.Stat(c.ConfigPath); err != nil {
			return fmt.Errorf("service install: config %s: %w", c.ConfigPath, err)
		}
	}
	return nil
}

// waitForStop is only used when run interactively; the Service Control
// Manager path never calls it.
func waitForStop(p *program) { <-p.done }

// attachSystemLog sends the service's lifecycle messages to the Event Log
// as well (a service has no console), and makes a daemon that fails on its
// own exit the process with status 1, which is what triggers the Service
// Control Manager's recovery action (restart).
func attachSystemLog(p *program, s ksvc.Service) {
	if Interactive() {
		return
	}
	el, err := s.SystemLogger(nil)
	if err != nil {
		return
	}
	p.log = slog.New(teeHandler{p.log.Handler(), &systemHandler{l: el, level: slog.LevelInfo}})
	p.onExit = func(err error) {
		_ = el.Error(fmt.Sprintf("posbridge stopped on its own: %v", err))
		os.Exit(1)
	}
}

// SystemLogHandler returns a slog handler writing records at level and
// above to the Windows Event Log (source = the service name). The daemon's
// logger should tee into it when running as a service: a service's stderr
// goes nowhere.
func SystemLogHandler(cfg Config, level slog.Leveler) (slog.Handler, error) {
	cfg = cfg.withDefaults()
	s, err := ksvc.New(noop{}, cfg.kardianosConfig())
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	el, err := s.SystemLogger(nil)
	if err != nil {
		return nil, fmt.Errorf("service: event log: %w", err)
	}
	return &systemHandler{l: el, level: level}, nil
}
