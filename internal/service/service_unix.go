//go:build !windows

package service

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"os/user"
	"syscall"

	ksvc "github.com/kardianos/service"
)

// DefaultUser is the account the service runs as on Linux.
const DefaultUser = LinuxUser

// platformOptions gives kardianos our hardened unit. Other init systems
// (sysv, openrc) get kardianos's own script; only systemd is supported.
func platformOptions(c Config, kc *ksvc.Config) {
	if c.User == "" {
		c.User = DefaultUser
		kc.UserName = DefaultUser
	}
	kc.Option["SystemdScript"] = Unit(c)
	kc.Option["Restart"] = "on-failure"
}

// preInstall checks what install needs and kardianos would not explain.
func preInstall(c Config) error {
	u := c.User
	if u == "" {
		u = DefaultUser
	}
	if _, err := user.Lookup(u); err != nil {
		return fmt.Errorf("service install: user %q does not exist; create it with: useradd --system --user-group --groups dialout --home-dir %s --shell /usr/sbin/nologin %s", u, LinuxDataDir, u)
	}
	if c.ConfigPath != "" {
		if _, err := os.Stat(c.ConfigPath); err != nil {
			return fmt.Errorf("service install: config %s: %w", c.ConfigPath, err)
		}
	}
	return nil
}

// waitForStop blocks until SIGTERM/SIGINT arrives or the daemon returns on
// its own; kardianos then calls Stop.
func waitForStop(p *program) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(sig)
	select {
	case s := <-sig:
		p.log.Info("signal received", "signal", s.String())
	case <-p.done:
	}
}

// attachSystemLog: under systemd, stdout and stderr already go to the
// journal, so nothing is added.
func attachSystemLog(*program, ksvc.Service) {}

// SystemLogHandler returns a handler for the system log. Under systemd the
// daemon's stderr is already in the journal (journalctl -u posbridge), so
// on Linux it discards; on Windows it writes to the Event Log.
func SystemLogHandler(cfg Config, level slog.Leveler) (slog.Handler, error) {
	return slog.DiscardHandler, nil
}
