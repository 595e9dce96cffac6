// Package service installs, controls and runs posbridge under the
// operating system's service manager (systemd on Linux, the Service Control
// Manager on Windows) through github.com/kardianos/service.
//
// Two rules shape it. Start must never block: the service manager waits on
// it, and a store PC whose gateway or serial port hangs must not hang the
// manager with it, so Start only launches the daemon in a goroutine. Stop
// (and, on Windows, Shutdown) must finish within the manager's timeout: it
// cancels the daemon's context and waits for it to return, but never longer
// than Config.StopTimeout, which is kept below the unit's TimeoutStopSec.
//
// On Linux the unit file is our own hardened one (see Unit), given to
// kardianos as its "SystemdScript", so `posbridge service install` and the
// .deb/.rpm install the same unit.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	ksvc "github.com/kardianos/service"
)

// Defaults for Config's zero values.
const (
	DefaultName        = "posbridge"
	DefaultDisplayName = "posbridge POS terminal bridge"
	DefaultDescription = "Bridges till software to Hesabe Smart POS card terminals (serial/USB and MQTT)."
	// DefaultStopTimeout bounds Stop. The systemd unit allows 30 s
	// (TimeoutStopSec); Windows gives a service about 20 s at shutdown.
	DefaultStopTimeout = 15 * time.Second
)

// Actions accepted by Control.
var Actions = []string{"install", "uninstall", "start", "stop", "restart"}

// Config describes the installed service.
type Config struct {
	Name        string // service / unit name; default "posbridge"
	DisplayName string
	Description string
	// ConfigPath is passed to `posbridge run --config`.
	ConfigPath string
	// User runs the service. Linux: a system user (default "posbridge",
	// created by the packages). Windows: an account such as
	// `NT AUTHORITY\LocalService`; "" means LocalSystem.
	User string
	// Executable is the binary the service starts; default: this one.
	Executable string
	// Args are its arguments; default: run --config ConfigPath.
	Args []string
	// StopTimeout bounds Stop; default DefaultStopTimeout.
	StopTimeout time.Duration
}

// withDefaults fills zero fields. It never fails: an unknown executable
// path leaves Executable empty, and kardianos then finds it itself.
func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.DisplayName == "" {
		c.DisplayName = DefaultDisplayName
	}
	if c.Description == "" {
		c.Description = DefaultDescription
	}
	if c.Executable == "" {
		if exe, err := os.Executable(); err == nil {
			if abs, err := filepath.EvalSymlinks(exe); err == nil {
				exe = abs
			}
			c.Executable = exe
		}
	}
	if c.Args == nil {
		c.Args = []string{"run"}
		if c.ConfigPath != "" {
			c.Args = append(c.Args, "--config", c.ConfigPath)
		}
	}
	if c.StopTimeout <= 0 {
		c.StopTimeout = DefaultStopTimeout
	}
	return c
}

// kardianosConfig builds the kardianos configuration, with the
// platform's options (platformOptions, in service_unix.go and
// service_windows.go).
func (c Config) kardianosConfig() *ksvc.Config {
	c = c.withDefaults()
	kc := &ksvc.Config{
		Name:        c.Name,
		DisplayName: c.DisplayName,
		Description: c.Description,
		UserName:    c.User,
		Executable:  c.Executable,
		Arguments:   c.Args,
		Option:      ksvc.KeyValue{},
	}
	platformOptions(c, kc)
	return kc
}

// noop is the Interface for control actions, which never run the program.
type noop struct{}

func (noop) Start(ksvc.Service) error { return nil }
func (noop) Stop(ksvc.Service) error  { return nil }

func newControl(cfg Config) (ksvc.Service, error) {
	s, err := ksvc.New(noop{}, cfg.kardianosConfig())
	if err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	return s, nil
}

// Control performs action (install, uninstall, start, stop, restart) on
// the service. Install on Linux writes the hardened unit to
// /etc/systemd/system and enables it; it does not start it.
func Control(cfg Config, action string) error {
	known := false
	for _, a := range Actions {
		known = known || a == action
	}
	if !known {
		return fmt.Errorf("service: unknown action %q (want %s)", action, strings.Join(Actions, ", "))
	}
	cfg = cfg.withDefaults()
	if action == "install" {
		if err := preInstall(cfg); err != nil {
			return err
		}
	}
	s, err := newControl(cfg)
	if err != nil {
		return err
	}
	if err := ksvc.Control(s, action); err != nil {
		return fmt.Errorf("service %s (%s): %w", action, Platform(), err)
	}
	return nil
}

// Status names the service's state: "running", "stopped" or
// "not installed". An error means it could not be determined.
func Status(cfg Config) (string, error) {
	s, err := newControl(cfg.withDefaults())
	if err != nil {
		return "unknown", err
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, ksvc.ErrNotInstalled):
		return "not installed", nil
	case err != nil:
		return "unknown", fmt.Errorf("service status (%s): %w", Platform(), err)
	case st == ksvc.StatusRunning:
		return "running", nil
	case st == ksvc.StatusStopped:
		return "stopped", nil
	}
	return "unknown", nil
}

// Interactive reports whether this process runs from a console rather
// than under a service manager.
func Interactive() bool { return ksvc.Interactive() }

// Platform names the service system kardianos detected, e.g.
// "linux-systemd", "unix-systemv" or "windows-service".
func Platform() string { return ksvc.Platform() }

// ErrStopTimeout is returned by Run when the daemon did not return within
// StopTimeout after it was asked to stop.
var ErrStopTimeout = errors.New("service: the daemon did not stop in time")

// ErrExited is returned by Run when the daemon returned nil without being
// asked to stop: the service manager must see a failure and restart it.
var ErrExited = errors.New("service: the daemon exited without being asked to stop")

// program adapts a run function to kardianos's Interface: Start launches
// it and returns at once; Stop and Shutdown cancel it and wait, bounded.
type program struct {
	run         func(ctx context.Context) error
	log         *slog.Logger
	stopTimeout time.Duration

	cancel   context.CancelFunc
	done     chan struct{} // closed when run has returned
	err      error         // run's result, set before done closes
	stopOnce sync.Once
	stopping chan struct{} // closed when Stop or Shutdown was called
	stopErr  error
	// onExit is told when run returns without being asked to stop
	// (platform hook: on Windows the process must exit for the Service
	// Control Manager's recovery actions to restart it).
	onExit func(err error)
}

func newProgram(run func(ctx context.Context) error, log *slog.Logger, stopTimeout time.Duration) *program {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &program{run: run, log: log, stopTimeout: stopTimeout,
		done: make(chan struct{}), stopping: make(chan struct{})}
}

// Start launches the daemon and returns at once.
func (p *program) Start(ksvc.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.log.Info("service starting", "platform", Platform())
	go func() {
		defer close(p.done)
		err := p.run(ctx)
		p.err = err
		select {
		case <-p.stopping:
		default:
			if err == nil {
				err = ErrExited
				p.err = err
			}
			p.log.Error("daemon stopped on its own; the service manager will restart it", "err", err)
			if p.onExit != nil {
				p.onExit(err)
			}
		}
	}()
	return nil
}

// Stop cancels the daemon and waits for it, at most stopTimeout.
func (p *program) Stop(ksvc.Service) error {
	p.stopOnce.Do(func() {
		close(p.stopping)
		p.log.Info("service stopping", "timeout", p.stopTimeout.String())
		if p.cancel != nil {
			p.cancel()
		}
		t := time.NewTimer(p.stopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
			if p.err != nil && !errors.Is(p.err, context.Canceled) {
				p.log.Warn("daemon returned an error while stopping", "err", p.err)
			} else {
				p.log.Info("service stopped")
			}
		case <-t.C:
			p.stopErr = fmt.Errorf("%w (waited %s)", ErrStopTimeout, p.stopTimeout)
			p.log.Error("daemon did not stop in time; exiting anyway (bbolt recovers from an unclean close)", "timeout", p.stopTimeout.String())
		}
	})
	return p.stopErr
}

// Shutdown is the Windows "system is shutting down" request: the same as
// Stop. (A handler that accepts Stop but not Shutdown leaves the database
// to be killed mid-write at every reboot.)
func (p *program) Shutdown(s ksvc.Service) error { return p.Stop(s) }

// result is what Run returns after the service manager let go.
func (p *program) result() error {
	if p.stopErr != nil {
		return p.stopErr
	}
	select {
	case <-p.done:
	default:
		return nil // never started
	}
	if p.err != nil && !errors.Is(p.err, context.Canceled) {
		return p.err
	}
	return nil
}

// Run runs run under the service manager until the manager stops it (or
// run fails on its own). run must return soon after its context is
// canceled: stop taking new checkouts, finish in-flight transitions and
// close the database. Run returns run's error, ErrExited or
// ErrStopTimeout; the caller exits non-zero on any error so the manager's
// restart-on-failure applies.
func Run(cfg Config, run func(ctx context.Context) error, log *slog.Logger) error {
	cfg = cfg.withDefaults()
	p := newProgram(run, log, cfg.StopTimeout)
	kc := cfg.kardianosConfig()
	kc.Option["RunWait"] = func() { waitForStop(p) }
	s, err := ksvc.New(p, kc)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	attachSystemLog(p, s)
	if err := s.Run(); err != nil {
		return fmt.Errorf("service run: %w", err)
	}
	return p.result()
}
