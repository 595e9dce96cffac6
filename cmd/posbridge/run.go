package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/logging"
	"github.com/posbridge/posbridge/internal/service"
)

func runRun(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "run", "run [--config FILE]")
	cfgPath := fs.String("config", defaultConfigPath(), "config file")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if abs, err := filepath.Abs(*cfgPath); err == nil {
		*cfgPath = abs
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return fail(e, "%v", err)
	}
	underService := !service.Interactive()
	svcCfg := service.Config{ConfigPath: *cfgPath}
	log, recent, red := newLogger(e.stderr, cfg, underService)
	if underService {
		// Under a service manager stderr may go nowhere (Windows): tee to
		// the system log too, redacted like everything else.
		if h, err := service.SystemLogHandler(svcCfg, slog.LevelInfo); err == nil && h != nil {
			log = slog.New(logging.Tee(log.Handler(), logging.Wrap(h, red)))
		}
	}
	if pct, fromEnv := daemon.TuneGC(ctx); fromEnv {
		log.Info("garbage collector target from GOGC", "gc_percent", pct)
	}
	d, err := daemon.New(daemon.Options{Config: cfg, Version: version, Logger: log, Recent: recent})
	if err != nil {
		return fail(e, "%s: %v", *cfgPath, err)
	}
	if underService {
		if err := service.Run(svcCfg, d.Run, log); err != nil {
			log.Error("posbridge service failed", "err", err)
			return exitFailure
		}
		return exitOK
	}
	if err := d.Run(ctx); err != nil {
		log.Error("posbridge failed", "err", err)
		return fail(e, "%v", err)
	}
	return exitOK
}

// newLogger builds the daemon's logger: text on a console, JSON otherwise
// (under a service manager), with every configured secret redacted.
func newLogger(w io.Writer, cfg config.Config, underService bool) (*slog.Logger, *logging.Recent, *logging.Redactor) {
	level, err := logging.ParseLevel(cfg.Log.Level)
	if err != nil {
		level = slog.LevelInfo // Validate has refused it already
	}
	asJSON := cfg.Log.Format == "json"
	if cfg.Log.Format == "" {
		f, ok := w.(*os.File)
		asJSON = underService || !ok || !isTerminal(f)
	}
	red := &logging.Redactor{}
	red.Add(cfg.SecretValues()...)
	recent := logging.NewRecent(50)
	return logging.New(w, logging.Options{Level: level, JSON: asJSON, Redact: red, Recent: recent}), recent, red
}
