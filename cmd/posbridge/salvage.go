package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/queue"
)

// exitSalvageLost: salvage finished but lost or changed records; the
// report lists their invoice numbers to look up at Hesabe.
const exitSalvageLost = 4

// runSalvage copies what a damaged database still holds into a new file
// and puts it in place of the damaged one, which is kept beside it under
// a dated name (docs/troubleshooting.md, "database is damaged").
func runSalvage(ctx context.Context, e env, args []string) int {
	fs := newFlags(e, "salvage", "salvage [--config FILE] [--dry-run] [--force]")
	cfgPath := fs.String("config", defaultConfigPath(), "config file (its data_dir holds the database)")
	dryRun := fs.Bool("dry-run", false, "read the database and report what a salvage would copy and lose; change nothing")
	force := fs.Bool("force", false, "salvage even a database that reads whole and passes its check")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return exitUsage
	}
	f, err := os.Open(*cfgPath)
	if err != nil {
		return fail(e, "salvage: %v", err)
	}
	cfg, err := config.Parse(f)
	f.Close()
	if err != nil {
		return fail(e, "salvage: %s: %v", *cfgPath, err)
	}
	path := filepath.Join(cfg.DataDir, doctor.DBFile)
	if _, err := os.Stat(path); err != nil {
		return fail(e, "salvage: %v", err)
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	newPath := path + ".salvaged-" + stamp
	rep, err := queue.Salvage(ctx, path, newPath, queue.SalvageOptions{DryRun: *dryRun})
	if err != nil {
		_ = os.Remove(newPath) // an unfinished copy; the damaged file is untouched
		if errors.Is(err, queue.ErrLocked) {
			return fail(e, "salvage: %s is in use (is posbridge running?): stop posbridge first (posbridge service stop), then run salvage again", path)
		}
		return fail(e, "salvage: %v (nothing was changed)", err)
	}
	if err := rep.WriteText(e.stdout); err != nil {
		return fail(e, "salvage: %v", err)
	}
	code := exitOK
	if !rep.Complete() {
		code = exitSalvageLost
	}
	switch {
	case *dryRun:
		fmt.Fprintln(e.stdout, "\ndry run: nothing was written or moved")
		return code
	case !rep.Damaged && rep.Complete() && !*force:
		_ = os.Remove(newPath)
		fmt.Fprintf(e.stdout, "\n%s is whole: nothing to salvage, nothing changed (--force salvages it anyway)\n", path)
		return exitOK
	}
	// Keep the damaged files under a dated name, then put the new one in
	// place. Nothing is deleted.
	moves := [][2]string{}
	if _, err := os.Stat(path + ".wal"); err == nil {
		moves = append(moves, [2]string{path + ".wal", path + ".wal.damaged-" + stamp})
	}
	moves = append(moves, [2]string{path, path + ".damaged-" + stamp}, [2]string{newPath, path})
	for i, m := range moves {
		if err := os.Rename(m[0], m[1]); err != nil {
			for _, done := range moves[:i] {
				fmt.Fprintf(e.stderr, "posbridge: salvage: moved %s to %s\n", done[0], done[1])
			}
			return fail(e, "salvage: move %s to %s: %v; put the files back by hand before starting posbridge", m[0], m[1], err)
		}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fail(e, "salvage: %v", err)
	}
	fmt.Fprintf(e.stdout, "\nthe damaged database is kept as %s", path+".damaged-"+stamp)
	if len(moves) == 3 {
		fmt.Fprintf(e.stdout, " and its accept log as %s", moves[0][1])
	}
	fmt.Fprintf(e.stdout, "\nthe salvaged database is in place: %s\nstart posbridge (posbridge service start)", path)
	if code != exitOK {
		fmt.Fprint(e.stdout, ", then look up each invoice number listed above in the Hesabe merchant panel")
	}
	fmt.Fprintln(e.stdout)
	return code
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil // renames there are not made durable through a directory handle
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
