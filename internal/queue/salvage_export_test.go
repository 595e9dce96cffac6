package queue

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// RewriteRecord changes the stored record of checkout seq in the closed
// database at path with change, leaving every index as it was: a record
// that decodes but breaks an invariant, as a page restored from an older
// write leaves it.
func RewriteRecord(path string, seq uint64, change func(c *pos.Checkout)) error {
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		s := &Store{inst: fmt.Sprintf("%x", tx.Bucket(bMeta).Get(kInstance))}
		bk := tx.Bucket(bCheckouts)
		r, err := s.decode(seq, bk.Get(seqKey(seq)))
		if err != nil {
			return err
		}
		change(&r.Checkout)
		v, err := encodeRecord(r)
		if err != nil {
			return err
		}
		return bk.Put(seqKey(seq), v)
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}
