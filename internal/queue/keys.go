package queue

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
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

// fifoKey orders a terminal's waiting checkouts by acceptance.
func fifoKey(terminal string, seq uint64) []byte {
	k := make([]byte, 0, len(terminal)+9)
	k = append(k, terminal...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint64(k, seq)
}

func fifoPrefix(terminal string) []byte { return append([]byte(terminal), 0) }

func (s *Store) formatID(seq uint64) string {
	return idPrefix + s.inst + "_" + strconv.FormatUint(seq, 10)
}

func (s *Store) formatInvoice(seq uint64) string {
	return invoicePrefix + strings.ToUpper(s.inst) + fmt.Sprintf("%010d", seq)
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

// record is the stored form of a checkout: the domain type plus what the
// domain type keeps out of its JSON (the request hash).
type record struct {
	pos.Checkout
	RequestHash string `json:"request_hash,omitempty"`
	Seq         uint64 `json:"-"`
}

// formatJSON is the first byte of every stored record: the encoding. A
// compact binary encoding can be added as another value without migrating.
const formatJSON byte = 1

// encodeRecord leaves out ID and InvoiceNumber: they follow from the key,
// so a new record can be encoded before its sequence number is known (by
// the caller's goroutine, outside the committer).
func encodeRecord(r *record) ([]byte, error) {
	stored := record{Checkout: r.Checkout, RequestHash: r.Checkout.RequestHash}
	stored.ID, stored.InvoiceNumber = "", ""
	b, err := json.Marshal(&stored)
	if err != nil {
		return nil, fmt.Errorf("queue: encode checkout %s: %w", r.ID, err)
	}
	out := make([]byte, 0, len(b)+1)
	out = append(out, formatJSON)
	return append(out, b...), nil
}

func (s *Store) decode(seq uint64, v []byte) (*record, error) {
	if len(v) == 0 || v[0] != formatJSON {
		return nil, fmt.Errorf("queue: checkout #%d: unknown record format", seq)
	}
	r := &record{Seq: seq}
	if err := json.Unmarshal(v[1:], r); err != nil {
		return nil, fmt.Errorf("queue: decode checkout #%d: %w", seq, err)
	}
	r.Checkout.RequestHash = r.RequestHash
	r.ID, r.InvoiceNumber = s.formatID(seq), s.formatInvoice(seq)
	return r, nil
}
