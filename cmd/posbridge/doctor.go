package main

import (
	"context"
	"os/user"
	"runtime"

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
	rs := doctor.Run(ctx, doctor.Options{ConfigPath: *cfgPath, ServiceUser: *svcUser})
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
