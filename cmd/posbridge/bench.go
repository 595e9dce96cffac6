package main

import (
	"context"
	"os"
	"runtime/pprof"
	"time"

	"github.com/posbridge/posbridge/internal/daemon"
	"github.com/posbridge/posbridge/internal/loadtest"
)

func runBench(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "bench", "bench [--tills 64] [--duration 10s] [--terminals 64] [--cpuprofile FILE]")
	tills := fs.Int("tills", 64, "concurrent tills")
	duration := fs.Duration("duration", 10*time.Second, "length of the accept phase (the direct phase takes half)")
	terminals := fs.Int("terminals", 64, "terminals to spread checkouts over")
	dataDir := fs.String("data-dir", "", "database directory (default: a temporary one; its disk is what is measured)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run (bridge, simulator and load) to this file, for `go tool pprof`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	daemon.TuneGC(ctx) // measure the bridge as it runs
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fail(e, "bench: %v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(e, "bench: cpu profile: %v", err)
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := loadtest.Run(ctx, loadtest.Options{Tills: *tills, Duration: *duration, Terminals: *terminals, DataDir: *dataDir})
	if err != nil {
		return fail(e, "bench: %v", err)
	}
	rep.Print(e.stdout)
	return exitOK
}
