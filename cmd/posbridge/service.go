package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"

	"github.com/posbridge/posbridge/internal/service"
)

// serviceCommands are `posbridge service ...`: install and control the
// service. The service itself runs `posbridge run`.
func serviceCommands() []*command {
	ctl := func(action, summary string) *command {
		return &command{name: action, summary: summary, run: func(ctx context.Context, e env, args []string) int {
			return runServiceControl(e, action, args)
		}}
	}
	return []*command{
		ctl("install", "install the service (enabled, not started): --config, --user"),
		ctl("uninstall", "stop and remove the service"),
		ctl("start", "start the service"),
		ctl("stop", "stop the service (graceful: in-flight checkouts finish)"),
		ctl("restart", "restart the service"),
		{name: "status", summary: "print running, stopped or not installed", run: runServiceStatus},
		{name: "unit", summary: "print the systemd unit that install writes", run: runServiceUnit},
	}
}

// serviceFlags are shared by the service subcommands.
func serviceFlags(fs *flag.FlagSet) (cfg *service.Config) {
	cfg = &service.Config{}
	fs.StringVar(&cfg.Name, "name", service.DefaultName, "service name")
	fs.StringVar(&cfg.ConfigPath, "config", defaultConfigPath(), "config file the service runs with")
	fs.StringVar(&cfg.User, "user", service.DefaultUser, "account the service runs as (Windows: \"\" = LocalSystem)")
	return cfg
}

func runServiceControl(e env, action string, args []string) int {
	fs := newFlags(e, "service "+action, "service "+action+" [--config FILE] [--user NAME] [--name NAME]")
	cfg := serviceFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	if abs, err := filepath.Abs(cfg.ConfigPath); err == nil {
		cfg.ConfigPath = abs
	}
	if err := service.Control(*cfg, action); err != nil {
		return fail(e, "%v", err)
	}
	fmt.Fprintf(e.stdout, "posbridge: service %s: %s done (%s)\n", cfg.Name, action, service.Platform())
	if action == "install" {
		fmt.Fprintf(e.stdout, "posbridge: check the setup with: posbridge doctor --config %s; then: posbridge service start\n", cfg.ConfigPath)
	}
	return exitOK
}

func runServiceStatus(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "service status", "service status [--name NAME]")
	cfg := serviceFlags(fs)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	st, err := service.Status(*cfg)
	if err != nil {
		return fail(e, "%v", err)
	}
	fmt.Fprintln(e.stdout, st)
	if st != "running" {
		return exitFailure
	}
	return exitOK
}

func runServiceUnit(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "service unit", "service unit [--config FILE] [--user NAME] [--executable PATH]")
	cfg := serviceFlags(fs)
	exe := fs.String("executable", "/usr/bin/posbridge", "binary the unit starts")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg.Executable = *exe
	if cfg.User == "" {
		cfg.User = "posbridge"
	}
	fmt.Fprint(e.stdout, service.Unit(*cfg))
	return exitOK
}
