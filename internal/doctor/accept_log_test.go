package doctor_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/doctor"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// crashChild opens the database in $DOCTOR_CRASH_DB, accepts checkouts,
// says "ready" and waits to be killed: an unclean stop that leaves the
// accept log beside the database. Run from TestMain.
func crashChild(path string) int {
	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for i := range 20 {
		key := fmt.Sprintf("crash-%d", i)
		if _, _, err := s.Create(context.Background(), pos.Checkout{IdempotencyKey: key, RequestHash: "h-" + key,
			TerminalID: "29708454", Amount: 1250, Deadline: time.Now().Add(time.Hour)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	os.Stdout.WriteString("ready")
	select {}
}

// crash leaves dataDir/posbridge.db and its accept log as a posbridge
// killed after accepting checkouts leaves them.
func crash(t *testing.T, dataDir string) {
	t.Helper()
	self, _ := os.Executable()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "DOCTOR_CRASH_DB="+filepath.Join(dataDir, doctor.DBFile))
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := stdout.Read(buf); err != nil || string(buf) != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v %s", buf, err, stderr.String())
	}
	cmd.Process.Kill()
	cmd.Wait()
	if fi, err := os.Stat(filepath.Join(dataDir, doctor.DBFile+".wal")); err != nil || fi.Size() == 0 {
		t.Fatalf("no accept log after the crash: %v", err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDatabaseCheckLeavesAcceptLog: after an unclean stop the accept log
// (posbridge.db.wal) may hold accepted checkouts the database does not
// have yet. doctor opened the database as posbridge does, which applied
// the log and deleted it: "doctor changes nothing" did not hold, and the
// guide's "never delete or move the .wal file on its own" was broken by
// the check a technician runs first. Now the two files are left as they
// are, and doctor says the log is there.
func TestDatabaseCheckLeavesAcceptLog(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	crash(t, s.dataDir)
	db, wal := filepath.Join(s.dataDir, doctor.DBFile), filepath.Join(s.dataDir, doctor.DBFile+".wal")
	dbBefore, walBefore := readFile(t, db), readFile(t, wal)
	rs := s.run(t, doctor.Options{})
	expect(t, rs, "database", doctor.Warn, "accept log", "applies it")
	if !bytes.Equal(readFile(t, db), dbBefore) {
		t.Error("doctor changed the database")
	}
	if !bytes.Equal(readFile(t, wal), walBefore) {
		t.Error("doctor changed or removed the accept log")
	}
	if doctor.Failed(rs) {
		t.Error("an accept log that belongs to its database failed doctor")
	}
	left, _ := filepath.Glob(filepath.Join(s.dataDir, ".doctor*"))
	if len(left) > 0 {
		t.Errorf("doctor left %v behind", left)
	}
}

// TestDatabaseCheckAcceptLogMismatch: the database was replaced (here by
// a fresh one) while the accept log of the old one was left beside it.
// posbridge refuses to start ("holds checkouts of another database");
// doctor said so only in the queue's words with "check the file and the
// disk". It now gives the guide's fix, and says so also when the database
// is missing altogether (it used to say "does not exist yet; posbridge
// creates it at first start").
func TestDatabaseCheckAcceptLogMismatch(t *testing.T) {
	s := newSetup(t)
	s.write(t)
	crash(t, s.dataDir)
	db := filepath.Join(s.dataDir, doctor.DBFile)
	other := filepath.Join(t.TempDir(), "other.db")
	st, err := queue.Open(other, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.WriteFile(db, readFile(t, other), 0o600); err != nil {
		t.Fatal(err)
	}
	walBefore := readFile(t, db+".wal")
	expect(t, s.run(t, doctor.Options{}), "database", doctor.Fail, "holds checkouts of another database", "move the .wal file away (keep it)")
	if !bytes.Equal(readFile(t, db+".wal"), walBefore) {
		t.Error("doctor changed or removed the accept log")
	}

	os.Remove(db)
	expect(t, s.run(t, doctor.Options{}), "database", doctor.Fail, "accept log "+db+".wal", "put back the database")
	if _, err := os.Stat(db); err == nil {
		t.Error("doctor created the database")
	}
}
