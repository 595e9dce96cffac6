package queue

import (
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
)

// Keys and values.
//
// A checkout's primary key is its sequence number (8 bytes, big-endian), so
// the checkout bucket is in acceptance order. Its public ID and invoice
// number are derived from the sequence and the database's random instance
// id, so neither needs an index and neither repeats if the file is deleted
// and created again (Hesabe must never see an invoice_number twice).

const (
	idPrefix      = "co_"
	invoicePrefix = "PB"
	// maxKeyLen bounds idempotency keys and terminal ids (bbolt allows 32 KiB).
	maxKeyLen = 255
)

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func seqOf(k []byte) uint64 { return binary.BigEndian.Uint64(k[len(k)-8:]) }

// timeBytes encodes t so that byte order is time order (nanoseconds, sign
// bit flipped), clamped to what int64 nanoseconds can hold.
func timeBytes(t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minTime):
		n = math.MinInt64
	case t.After(maxTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return binary.BigEndian.AppendUint64(make([]byte, 0, 16), uint64(n)^(1<<63))
}

func timeOf(b []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])^(1<<63))).UTC()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// timeSeqKey is an index key ordered by time, then acceptance order.
func timeSeqKey(t time.Time, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(timeBytes(t), seq)
}

func (s *Store) formatID(seq uint64) string {
	var b [48]byte
	return string(strconv.AppendUint(append(append(append(b[:0], idPrefix...), s.inst...), '_'), seq, 10))
}

// formatInvoice is PB, the instance id in upper case, and seq in at least
// ten digits.
func (s *Store) formatInvoice(seq uint64) string {
	var b, d [32]byte
	out := append(b[:0], invoicePrefix...)
	for _, c := range []byte(s.inst) {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	digits := strconv.AppendUint(d[:0], seq, 10)
	for range 10 - len(digits) {
		out = append(out, '0')
	}
	return string(append(out, digits...))
}

// parseID returns the sequence of an ID made by this database, or false.
func (s *Store) parseID(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, idPrefix+s.inst+"_")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil && seq > 0 && s.formatID(seq) == id
}

func (s *Store) parseInvoice(inv string) (uint64, bool) {
	rest, ok := strings.CutPrefix(inv, invoicePrefix+strings.ToUpper(s.inst))
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil && seq > 0 && s.formatInvoice(seq) == inv
}
