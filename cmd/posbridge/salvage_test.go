package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// salvageSetup writes a config whose data_dir holds a database of n
// checkouts, with the page of checkout #victim's record garbled when
// victim > 0 (as internal/queue's damage tests do). It returns the
// config, the database's path and the checkouts' invoice numbers.
func salvageSetup(t *testing.T, n, victim int) (cfgPath, dbPath string, invoices []string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "posbridge.yaml")
	if err := os.WriteFile(cfgPath, []byte("data_dir: "+data+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dbPath = filepath.Join(data, "posbridge.db")
	s, err := queue.Open(dbPath, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		key := fmt.Sprintf("lane1-%05d", i)
		c, _, err := s.Create(context.Background(), pos.Checkout{IdempotencyKey: key, RequestHash: "h-" + key,
			TillRef: "receipt/" + key, TerminalID: fmt.Sprintf("T%d", i%3), Amount: 1000, Deadline: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		invoices = append(invoices, c.InvoiceNumber)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if victim > 0 {
		raw, err := os.ReadFile(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		at := bytes.Index(raw, []byte(fmt.Sprintf("receipt/lane1-%05d", victim)))
		page := at / os.Getpagesize() * os.Getpagesize()
		for i := page + 16; i < page+16+256; i++ {
			raw[i] = 0xff
		}
		if err := os.WriteFile(dbPath, raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath, dbPath, invoices
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestSalvageCommand: posbridge salvage refuses while the database is
// locked; --dry-run reports the lost invoices and writes nothing; the
// salvage moves the damaged file aside under a dated name (kept
// byte for byte), puts a database that opens and checks in its place,
// and exits 4 because records were lost.
func TestSalvageCommand(t *testing.T) {
	cfg, db, invoices := salvageSetup(t, 2000, 1000)
	damaged, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Dir(db)

	s, err := queue.Open(db, queue.Options{NoAcceptLog: true})
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "salvage", "--config", cfg)
	_ = s.Close()
	if code != exitFailure || !strings.Contains(errOut, "stop posbridge") {
		t.Fatalf("salvage of a locked database: exit %d\n%s\n%s", code, out, errOut)
	}
	if err := os.WriteFile(db, damaged, 0o600); err != nil { // as it was before the open above
		t.Fatal(err)
	}

	code, out, errOut = runCLI(t, "", "salvage", "--config", cfg, "--dry-run")
	if code != exitSalvageLost || !strings.Contains(out, "LOST") || !strings.Contains(out, invoices[1000]) || !strings.Contains(out, "dry run") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := dirNames(t, data); len(got) != 1 || got[0] != "posbridge.db" {
		t.Fatalf("the dry run left %v in the data directory", got)
	}

	code, out, errOut = runCLI(t, "", "salvage", "--config", cfg)
	if code != exitSalvageLost || !strings.Contains(out, invoices[1000]) {
		t.Fatalf("salvage: exit %d\n%s\n%s", code, out, errOut)
	}
	var aside string
	for _, name := range dirNames(t, data) {
		if strings.HasPrefix(name, "posbridge.db.damaged-") {
			aside = filepath.Join(data, name)
		}
	}
	if b, err := os.ReadFile(aside); err != nil || !bytes.Equal(b, damaged) {
		t.Fatalf("the damaged file was not kept as it was (%v in %v): %v", aside, dirNames(t, data), err)
	}
	s, err = queue.Open(db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c, err := s.GetByInvoiceNumber(context.Background(), invoices[0]); err != nil || c.InvoiceNumber != invoices[0] {
		t.Fatalf("the salvaged database lacks %s: %v", invoices[0], err)
	}
}

// TestSalvageCommandWholeDatabase: a database that is not damaged is left
// as it is (exit 0), unless --force.
func TestSalvageCommandWholeDatabase(t *testing.T) {
	cfg, db, _ := salvageSetup(t, 50, 0)
	before, _ := os.ReadFile(db)
	code, out, errOut := runCLI(t, "", "salvage", "--config", cfg)
	if code != exitOK || !strings.Contains(out, "nothing to salvage") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) || len(dirNames(t, filepath.Dir(db))) != 1 {
		t.Fatalf("a whole database was changed: %v", dirNames(t, filepath.Dir(db)))
	}
	code, out, errOut = runCLI(t, "", "salvage", "--config", cfg, "--force")
	if code != exitOK || len(dirNames(t, filepath.Dir(db))) != 2 {
		t.Fatalf("--force: exit %d %v\n%s\n%s", code, dirNames(t, filepath.Dir(db)), out, errOut)
	}
}
