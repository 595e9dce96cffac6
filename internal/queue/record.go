package queue

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// record is a stored checkout and its sequence number (its key).
type record struct {
	pos.Checkout
	Seq uint64
}

// recordJSON is format 1: pos.Checkout's JSON plus the request hash, which
// that JSON leaves out.
type recordJSON struct {
	pos.Checkout
	RequestHash string `json:"request_hash,omitempty"`
}

// The first byte of every stored record is its encoding. Both are read;
// only the binary one is written.
const (
	// formatJSON: JSON of record, written by schema version 1 (and by the
	// request outbox, requests.go).
	formatJSON byte = 1
	// formatBinary: the compact encoding below (schema version 2).
	formatBinary byte = 2
)

// The binary record, after its format byte:
//
//	strings   IdempotencyKey RequestHash TillRef TerminalID Customer.Name
//	          Customer.Email Customer.Phone Description LastError TransactionID
//	varint    Amount, InvoiceID
//	uvarint   Attempts
//	byte      State (stateCode), flags (1: CancelRequested, 2: Result)
//	time      CreatedAt (absolute), then relative to it: UpdatedAt Deadline
//	          NextAttemptAt CancelRequestedAt
//	[Result]  Outcome Reference Reason Source (strings) At (time)
//	uvarint   len(History), then per entry: At (time) From To (stateCode) Reason (string)
//
// A string is a uvarint length and its bytes. CreatedAt is a zigzag varint
// of Unix seconds and a uvarint of nanoseconds; every other time is a
// uvarint u: 0 the zero time, 1 an absolute time as CreatedAt's follows,
// else the zigzag-encoded nanoseconds since CreatedAt in u-2. A new
// checkout is ~150 bytes, each history entry ~10 more plus its reason
// (JSON: ~590 and ~93).
//
// ID and InvoiceNumber are left out: they follow from the key, so a new
// record can be encoded before its sequence number is known (by the
// caller's goroutine, outside the committer).

const (
	flagCancelRequested = 1 << 0
	flagResult          = 1 << 1
)

// stateCode numbers the states on disk: 0 is "" (a first history entry's
// From), then stateSlots' order plus one. Append only.
func stateCode(s pos.State) (byte, error) {
	if s == "" {
		return 0, nil
	}
	if i := slot(s); i >= 0 {
		return byte(i + 1), nil
	}
	return 0, fmt.Errorf("unknown state %q", s)
}

func stateOf(b byte) (pos.State, error) {
	switch {
	case b == 0:
		return "", nil
	case int(b) <= len(stateSlots):
		return stateSlots[b-1], nil
	}
	return "", fmt.Errorf("unknown state code %d", b)
}

// encodeRecord encodes r in the binary format.
func encodeRecord(r *record) ([]byte, error) {
	c := &r.Checkout
	n := 64 + len(c.IdempotencyKey) + len(c.RequestHash) + len(c.TillRef) + len(c.TerminalID) +
		len(c.Customer.Name) + len(c.Customer.Email) + len(c.Customer.Phone) + len(c.Description) +
		len(c.LastError) + len(c.TransactionID) + 48*len(c.History)
	for _, h := range c.History {
		n += len(h.Reason)
	}
	if c.Result != nil {
		n += 24 + len(c.Result.Outcome) + len(c.Result.Reference) + len(c.Result.Reason) + len(c.Result.Source)
	}
	b := make([]byte, 0, n)
	b = append(b, formatBinary)
	for _, s := range []string{c.IdempotencyKey, c.RequestHash, c.TillRef, c.TerminalID, c.Customer.Name,
		c.Customer.Email, c.Customer.Phone, c.Description, c.LastError, c.TransactionID} {
		b = appendString(b, s)
	}
	b = binary.AppendVarint(b, int64(c.Amount))
	b = binary.AppendVarint(b, c.InvoiceID)
	if c.Attempts < 0 {
		return nil, fmt.Errorf("queue: encode checkout %s: negative attempts", r.ID)
	}
	b = binary.AppendUvarint(b, uint64(c.Attempts))
	st, err := stateCode(c.State)
	if err != nil {
		return nil, fmt.Errorf("queue: encode checkout %s: %w", r.ID, err)
	}
	var flags byte
	if c.CancelRequested {
		flags |= flagCancelRequested
	}
	if c.Result != nil {
		flags |= flagResult
	}
	b = append(b, st, flags)
	base := c.CreatedAt
	b = appendAbsTime(b, base)
	for _, t := range []time.Time{c.UpdatedAt, c.Deadline, c.NextAttemptAt, c.CancelRequestedAt} {
		b = appendTime(b, base, t)
	}
	if res := c.Result; res != nil {
		b = appendString(b, string(res.Outcome))
		b = appendString(b, res.Reference)
		b = appendString(b, res.Reason)
		b = appendString(b, res.Source)
		b = appendTime(b, base, res.At)
	}
	b = binary.AppendUvarint(b, uint64(len(c.History)))
	for _, h := range c.History {
		from, err := stateCode(h.From)
		if err != nil {
			return nil, fmt.Errorf("queue: encode checkout %s: history: %w", r.ID, err)
		}
		to, err := stateCode(h.To)
		if err != nil {
			return nil, fmt.Errorf("queue: encode checkout %s: history: %w", r.ID, err)
		}
		b = appendTime(b, base, h.At)
		b = append(b, from, to)
		b = appendString(b, h.Reason)
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendAbsTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

// appendTime encodes t relative to base (see the format above).
func appendTime(b []byte, base, t time.Time) []byte {
	switch d := t.Sub(base); {
	case t.IsZero():
		return append(b, 0)
	case d > -1<<62 && d < 1<<62 && base.Add(d).Equal(t): // no overflow, room for the +2
		return binary.AppendUvarint(b, 2+uint64(d<<1^d>>63))
	default:
		return appendAbsTime(append(b, 1), t)
	}
}

// decode reads a stored record of either format.
func (s *Store) decode(seq uint64, v []byte) (*record, error) {
	r := &record{Seq: seq}
	switch {
	case len(v) > 0 && v[0] == formatBinary:
		if err := decodeBinary(&r.Checkout, v[1:]); err != nil {
			return nil, fmt.Errorf("queue: decode checkout #%d: %w", seq, err)
		}
	case len(v) > 0 && v[0] == formatJSON:
		var j recordJSON
		if err := json.Unmarshal(v[1:], &j); err != nil {
			return nil, fmt.Errorf("queue: decode checkout #%d: %w", seq, err)
		}
		r.Checkout = j.Checkout
		r.Checkout.RequestHash = j.RequestHash
		if err := checkJSONRecord(&r.Checkout); err != nil {
			return nil, fmt.Errorf("queue: decode checkout #%d: %w", seq, err)
		}
	default:
		return nil, fmt.Errorf("queue: checkout #%d: unknown record format", seq)
	}
	r.ID, r.InvoiceNumber = s.formatID(seq), s.formatInvoice(seq)
	return r, nil
}

var errShort = errors.New("truncated record")

// checkJSONRecord refuses what the binary format cannot hold, as its
// decoder does: a record of the first schema without a state, or with a
// state or count no release wrote, is damaged.
func checkJSONRecord(c *pos.Checkout) error {
	if c.State == "" {
		return errors.New("no state")
	}
	if _, err := stateCode(c.State); err != nil {
		return err
	}
	for _, h := range c.History {
		if _, err := stateCode(h.From); err != nil {
			return fmt.Errorf("history: %w", err)
		}
		if _, err := stateCode(h.To); err != nil {
			return fmt.Errorf("history: %w", err)
		}
	}
	if c.Attempts < 0 {
		return errors.New("negative attempts")
	}
	return nil
}

// decoder reads the binary format from a string copy of the value, so
// that every decoded string shares one allocation.
type decoder struct {
	s   string
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < len(d.s); i++ {
		c := d.s[i]
		if i == binary.MaxVarintLen64 {
			break
		}
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				break
			}
			d.s = d.s[i+1:]
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.err = errShort
	return 0
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.s) == 0 {
		d.err = errShort
		return 0
	}
	c := d.s[0]
	d.s = d.s[1:]
	return c
}

func (d *decoder) string() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.s)) {
		d.err = errShort
		return ""
	}
	out := d.s[:n]
	d.s = d.s[n:]
	return out
}

func (d *decoder) absTime() time.Time {
	sec := d.varint()
	nsec := d.uvarint()
	if d.err != nil {
		return time.Time{}
	}
	if nsec >= 1e9 {
		d.err = errors.New("bad nanoseconds")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

func (d *decoder) time(base time.Time) time.Time {
	switch u := d.uvarint(); {
	case d.err != nil || u == 0:
		return time.Time{}
	case u == 1:
		return d.absTime()
	default:
		u -= 2
		return base.Add(time.Duration(int64(u>>1) ^ -int64(u&1)))
	}
}

func (d *decoder) state() pos.State {
	st, err := stateOf(d.byte())
	if err != nil && d.err == nil {
		d.err = err
	}
	return st
}

func decodeBinary(c *pos.Checkout, v []byte) error {
	d := decoder{s: string(v)}
	c.IdempotencyKey = d.string()
	c.RequestHash = d.string()
	c.TillRef = d.string()
	c.TerminalID = d.string()
	c.Customer.Name = d.string()
	c.Customer.Email = d.string()
	c.Customer.Phone = d.string()
	c.Description = d.string()
	c.LastError = d.string()
	c.TransactionID = d.string()
	c.Amount = pos.Money(d.varint())
	c.InvoiceID = d.varint()
	c.Attempts = int(d.uvarint())
	c.State = d.state()
	flags := d.byte()
	base := d.absTime()
	c.CreatedAt = base
	c.UpdatedAt = d.time(base)
	c.Deadline = d.time(base)
	c.NextAttemptAt = d.time(base)
	c.CancelRequestedAt = d.time(base)
	c.CancelRequested = flags&flagCancelRequested != 0
	if flags&flagResult != 0 {
		c.Result = &pos.Result{Outcome: pos.Outcome(d.string()), Reference: d.string(), Reason: d.string(), Source: d.string()}
		c.Result.At = d.time(base)
	}
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.s)) { // each entry takes at least 4 bytes
		d.err = errShort
	}
	if d.err == nil && n > 0 {
		c.History = make([]pos.Transition, n)
		for i := range c.History {
			h := &c.History[i]
			h.At = d.time(base)
			h.From = d.state()
			h.To = d.state()
			h.Reason = d.string()
		}
	}
	if d.err == nil && len(d.s) != 0 {
		d.err = fmt.Errorf("%d bytes after the record", len(d.s))
	}
	if d.err == nil && c.State == "" {
		d.err = errors.New("no state")
	}
	return d.err
}
