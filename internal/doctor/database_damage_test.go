package doctor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// TestDatabaseCheckDamaged: a database with a page bbolt cannot read
// opens (its meta pages are whole), so doctor said "opens" while
// posbridge refused checkouts. doctor now runs the store's check under
// the damage guard and reports the damage, how many records cannot be
// read, and the fix: stop posbridge, then posbridge salvage. The file
// is left as it was.
func TestDatabaseCheckDamaged(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	path := filepath.Join(s.dataDir, doctor.DBFile)
	st, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		key := fmt.Sprintf("lane1-%05d", i)
		if _, _, err := st.Create(context.Background(), pos.Checkout{IdempotencyKey: key, RequestHash: "h-" + key,
			TillRef: "receipt/" + key, TerminalID: "29708454", Amount: 1250, Deadline: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "database", doctor.OK, "opens", "")

	raw := readFile(t, path)
	at := bytes.Index(raw, []byte("receipt/lane1-01000"))
	page := at / os.Getpagesize() * os.Getpagesize()
	for i := page + 16; i < page+16+256; i++ {
		raw[i] = 0xff
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	rs = s.run(t, doctor.Options{})
	expect(t, rs, "database", doctor.Fail, "is damaged (", "stop posbridge, then posbridge salvage --config "+s.cfgPath)
	expect(t, rs, "database", doctor.Fail, "records unreadable", "")
	if !bytes.Equal(readFile(t, path), raw) {
		t.Error("doctor changed the damaged database")
	}
}
