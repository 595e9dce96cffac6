package main

import (
	"context"
	"os"
	"time"

	"github.com/posbridge/posbridge/internal/soak"
)

func runSoak(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "soak", "soak [--duration 10m] [--churn 20s] [--sample 10s] [--tills 2] [--profile-dir DIR]")
	duration := fs.Duration("duration", 10*time.Minute, "how long to load and disturb the bridge")
	churn := fs.Duration("churn", 20*time.Second, "how often every link is disturbed (terminals, broker, serial pty, gateway); negative: never")
	sample := fs.Duration("sample", 10*time.Second, "how often resources are recorded")
	tills := fs.Int("tills", 2, "tills paying at once")
	terminals := fs.Int("mqtt-terminals", 3, "simulated MQTT terminals (beside one serial)")
	profileDir := fs.String("profile-dir", "", "write goroutine dumps here (start, end of the load, settled)")
	logFile := fs.String("log", "", "write the bridge's log to this file (default: discarded)")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	o := soak.Options{Duration: *duration, Churn: *churn, Sample: *sample, Tills: *tills, MQTTTerminals: *terminals,
		ProfileDir: *profileDir, Progress: e.stderr}
	if *logFile != "" {
		f, err := os.Create(*logFile)
		if err != nil {
			return fail(e, "soak: %v", err)
		}
		defer f.Close()
		o.Log = f
	}
	rep, err := soak.Run(ctx, o)
	if err != nil {
		return fail(e, "soak: %v", err)
	}
	rep.Print(e.stdout)
	if rep.Check() != nil {
		return exitFailure
	}
	return exitOK
}
