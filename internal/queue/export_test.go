package queue

import (
	"time"

	bolt "go.etcd.io/bbolt"
)

// CallsPerCommit is the average number of calls the committer ran per
// transaction so far (benchmarks report it).
func CallsPerCommit(s *Store) float64 {
	n := s.batches.Load()
	if n == 0 {
		return 0
	}
	return float64(s.batched.Load()) / float64(n)
}

// AcceptLogStats reports the accept log's flushed groups, the checkouts
// in them and how long its writer waited for the committer to catch up.
func AcceptLogStats(s *Store) (groups, logged int64, stalled, flushing time.Duration) {
	if s.wal == nil {
		return 0, 0, 0, 0
	}
	return s.wal.batches.Load(), s.wal.logged.Load(), time.Duration(s.wal.stalled.Load()), time.Duration(s.wal.flushing.Load())
}

// HoldApply stops (or lets go) the committer's applying of the accept
// log: what is accepted meanwhile is only in the log, as after a crash
// between a flush and its apply. Reads would wait for it: tests read the
// files, or let go first. The log does not wait for the apply at its
// restart size meanwhile: it keeps growing, as when applying fails.
func HoldApply(s *Store, hold bool) {
	s.wal.hold.Store(hold)
	if !hold {
		s.wal.poke()
	}
}

// AcceptLogPath is the accept log beside the database at path.
func AcceptLogPath(path string) string { return path + ".wal" }

// SetInstance gives the closed database at path a fixed instance id, so a
// fuzz corpus of accept logs stays valid from run to run.
func SetInstance(path string, inst [4]byte) error {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kInstance, inst[:]) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
