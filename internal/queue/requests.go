package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/posbridge/posbridge/internal/pos"
)

// The request outbox.
//
// Customers, installment batches and payees wait here for their gateway
// like checkouts do, in the same file and through the same group commit,
// with the same promise: durable before the till hears "accepted", one
// transaction per change, every change in the history. They need less than
// checkouts (no terminal, no FIFO per terminal, no result to follow after
// delivery), so they have their own buckets and a smaller record. See
// docs/requests.md.

// Buckets of the request outbox.
var (
	bReq     = []byte("req")     // seq → request record
	bReqIdem = []byte("reqidem") // kind 0x00 idempotency key → seq
	bReqDue  = []byte("reqdue")  // gateway 0x00 next-attempt time, seq → nil (queued only)
	bReqOpen = []byte("reqopen") // seq → nil (submitting: outcome unknown after a crash)
	bReqDone = []byte("reqdone") // finished-at, seq → nil (final)

	requestBuckets = [][]byte{bReq, bReqIdem, bReqDue, bReqOpen, bReqDone}

	// kReqPending counts queued and submitting requests (uint64), for the
	// offline limit and the diagnostics without a scan.
	kReqPending = []byte("reqpending")
)

const reqIDPrefix = "rq_"

// reqRecord is the stored form of a request: the domain type plus what it
// keeps out of its till-facing JSON.
type reqRecord struct {
	pos.Request
	Hash    string          `json:"request_hash,omitempty"`
	Body    json.RawMessage `json:"payload"`
	Seq     uint64          `json:"-"`
	encoded []byte
}

func encodeRequest(r *reqRecord) ([]byte, error) {
	stored := reqRecord{Request: r.Request, Hash: r.Request.RequestHash, Body: r.Request.Payload}
	stored.ID = ""
	b, err := json.Marshal(&stored)
	if err != nil {
		return nil, fmt.Errorf("queue: encode request %s: %w", r.ID, err)
	}
	return append([]byte{formatJSON}, b...), nil
}

func (s *Store) decodeRequest(seq uint64, v []byte) (*reqRecord, error) {
	if len(v) == 0 || v[0] != formatJSON {
		return nil, fmt.Errorf("queue: request #%d: unknown record format", seq)
	}
	r := &reqRecord{Seq: seq}
	if err := json.Unmarshal(v[1:], r); err != nil {
		return nil, fmt.Errorf("queue: decode request #%d: %w", seq, err)
	}
	r.Request.RequestHash, r.Request.Payload = r.Hash, r.Body
	r.ID = s.formatReqID(seq)
	return r, nil
}

func (s *Store) formatReqID(seq uint64) string {
	return reqIDPrefix + s.inst + "_" + strconv.FormatUint(seq, 10)
}

func (s *Store) parseReqID(id string) (uint64, bool) {
	rest, ok := strings.CutPrefix(id, reqIDPrefix+s.inst+"_")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil && seq > 0 && s.formatReqID(seq) == id
}

// reqDueKey orders one gateway's queued requests by next attempt, then
// acceptance, so one gateway's backlog never hides another's.
func reqDueKey(gateway string, t time.Time, seq uint64) []byte {
	k := make([]byte, 0, len(gateway)+17)
	k = append(k, gateway...)
	k = append(k, 0)
	return append(k, timeSeqKey(t, seq)...)
}

func reqIdemKey(kind pos.RequestKind, key string) []byte {
	k := make([]byte, 0, len(kind)+1+len(key))
	k = append(k, kind...)
	k = append(k, 0)
	return append(k, key...)
}

type reqBuckets struct {
	s                                 *Store
	meta, recs, idem, due, open, done *bolt.Bucket
}

func (s *Store) openReq(tx *bolt.Tx) *reqBuckets {
	return &reqBuckets{s: s, meta: tx.Bucket(bMeta), recs: tx.Bucket(bReq), idem: tx.Bucket(bReqIdem),
		due: tx.Bucket(bReqDue), open: tx.Bucket(bReqOpen), done: tx.Bucket(bReqDone)}
}

func (b *reqBuckets) load(seq uint64) (*reqRecord, error) {
	v := b.recs.Get(seqKey(seq))
	if v == nil {
		return nil, nil
	}
	return b.s.decodeRequest(seq, v)
}

func (b *reqBuckets) pending() uint64 {
	if v := b.meta.Get(kReqPending); len(v) == 8 {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

func (b *reqBuckets) addPending(d int) error {
	n := int64(b.pending()) + int64(d)
	if n < 0 {
		return errIndex("pending request count below zero")
	}
	return b.meta.Put(kReqPending, binary.BigEndian.AppendUint64(nil, uint64(n)))
}

func reqPending(s pos.RequestState) bool {
	return s == pos.RequestQueued || s == pos.RequestSubmitting
}

// put writes r and moves its index entries from old's state (nil: new).
func (b *reqBuckets) put(old, r *reqRecord) error {
	v := r.encoded
	if v == nil {
		var err error
		if v, err = encodeRequest(r); err != nil {
			return err
		}
	}
	key := seqKey(r.Seq)
	if err := b.recs.Put(key, v); err != nil {
		return fmt.Errorf("queue: put request: %w", err)
	}
	if old != nil {
		switch old.State {
		case pos.RequestQueued:
			if err := b.due.Delete(reqDueKey(old.Gateway, old.NextAttemptAt, old.Seq)); err != nil {
				return err
			}
		case pos.RequestSubmitting:
			if err := b.open.Delete(key); err != nil {
				return err
			}
		}
	}
	var err error
	switch {
	case r.State == pos.RequestQueued:
		err = b.due.Put(reqDueKey(r.Gateway, r.NextAttemptAt, r.Seq), nil)
	case r.State == pos.RequestSubmitting:
		err = b.open.Put(key, nil)
	case r.State.Final():
		err = b.done.Put(timeSeqKey(r.FinishedAt, r.Seq), nil)
	}
	if err != nil {
		return fmt.Errorf("queue: index request: %w", err)
	}
	was := old != nil && reqPending(old.State)
	switch is := reqPending(r.State); {
	case is && !was:
		return b.addPending(1)
	case was && !is:
		return b.addPending(-1)
	}
	return nil
}

// CreateRequest stores a request the till asked for, in state queued, and
// returns it once it is durable. It takes Kind, Gateway, IdempotencyKey,
// RequestHash, TillRef, Payload, NotAfter and NextAttemptAt (zero: now)
// from r and assigns the rest.
//
// The idempotency key is scoped by kind: the same key with the same
// RequestHash returns the stored request with existing=true; with another
// hash it is a pos.EConflict. maxPending > 0 refuses a new request
// (pos.ELimit) when that many are already queued or submitting.
func (s *Store) CreateRequest(ctx context.Context, r pos.Request, maxPending int) (_ pos.Request, existing bool, _ error) {
	switch {
	case r.Kind == "":
		return pos.Request{}, false, pos.FieldErrorf(pos.EInvalid, "kind", "is required")
	case r.Gateway == "" || len(r.Gateway) > maxKeyLen || strings.ContainsRune(r.Gateway, 0):
		return pos.Request{}, false, pos.FieldErrorf(pos.EInvalid, "gateway", "is required (at most %d bytes, no NUL)", maxKeyLen)
	case len(r.IdempotencyKey) > maxKeyLen:
		return pos.Request{}, false, pos.FieldErrorf(pos.EInvalid, "idempotency_key", "must be at most %d bytes", maxKeyLen)
	case r.IdempotencyKey != "" && r.RequestHash == "":
		return pos.Request{}, false, pos.FieldErrorf(pos.EInvalid, "request_hash", "is required with an idempotency key")
	case len(r.Payload) == 0:
		return pos.Request{}, false, pos.FieldErrorf(pos.EInvalid, "payload", "is required")
	}
	now := s.now()
	rec := &reqRecord{Request: pos.Request{
		Kind: r.Kind, Gateway: r.Gateway, IdempotencyKey: r.IdempotencyKey, RequestHash: r.RequestHash,
		TillRef: r.TillRef, Payload: r.Payload, State: pos.RequestQueued,
		NextAttemptAt: r.NextAttemptAt.UTC().Round(0), NotAfter: r.NotAfter.UTC().Round(0),
		CreatedAt: now, UpdatedAt: now,
		History: []pos.RequestTransition{{At: now, To: pos.RequestQueued, Reason: "accepted"}},
	}}
	if rec.NextAttemptAt.IsZero() {
		rec.NextAttemptAt = now
	}
	enc, err := encodeRequest(rec)
	if err != nil {
		return pos.Request{}, false, err
	}
	var out *reqRecord
	err = s.update(ctx, func(tx *bolt.Tx) error {
		out, existing = nil, false
		b := s.openReq(tx)
		var ik []byte
		if r.IdempotencyKey != "" {
			ik = reqIdemKey(r.Kind, r.IdempotencyKey)
			if v := b.idem.Get(ik); v != nil {
				old, err := b.load(seqOf(v))
				if err != nil {
					return err
				}
				if old == nil {
					return errIndex("idempotency key %q points to missing request #%d", r.IdempotencyKey, seqOf(v))
				}
				if old.Request.RequestHash != r.RequestHash {
					return reject(pos.FieldErrorf(pos.EConflict, "idempotency_key",
						"key %q was already used for a different %s request (%s)", r.IdempotencyKey, r.Kind, old.ID))
				}
				out, existing = old, true
				return nil
			}
		}
		if maxPending > 0 && b.pending() >= uint64(maxPending) {
			return reject(pos.Errorf(pos.ELimit,
				"the gateway is unreachable and %d requests already wait for it (offline limit)", maxPending))
		}
		seq, err := b.recs.NextSequence()
		if err != nil {
			return fmt.Errorf("queue: next request sequence: %w", err)
		}
		nr := *rec
		nr.Seq, nr.ID, nr.encoded = seq, s.formatReqID(seq), enc
		if err := b.put(nil, &nr); err != nil {
			return err
		}
		if ik != nil {
			if err := b.idem.Put(ik, seqKey(seq)); err != nil {
				return fmt.Errorf("queue: put request idempotency key: %w", err)
			}
		}
		out = &nr
		return nil
	})
	if err != nil {
		return pos.Request{}, false, err
	}
	return out.Request, existing, nil
}

// TransitionRequest moves request id to state to in one transaction and
// returns it as committed. mutate (may be nil) may change NextAttemptAt,
// Result and Error; it runs after the state check and may refuse by
// returning an error (nothing is written). Entering submitting counts an
// attempt; entering a final state sets FinishedAt. A move the state
// machine forbids is a pos.EConflict naming the current state.
func (s *Store) TransitionRequest(ctx context.Context, id string, to pos.RequestState, reason string,
	mutate func(r *pos.Request) error) (pos.Request, error) {
	seq, ok := s.parseReqID(id)
	if !ok {
		return pos.Request{}, pos.Errorf(pos.ENotFound, "no request %q", id)
	}
	var out *reqRecord
	err := s.update(ctx, func(tx *bolt.Tx) error {
		out = nil
		b := s.openReq(tx)
		old, err := b.load(seq)
		if err != nil {
			return err
		}
		if old == nil {
			return reject(pos.Errorf(pos.ENotFound, "no request %q", id))
		}
		if !pos.RequestAllowed(old.State, to) {
			return reject(pos.Errorf(pos.EConflict, "request %s is %s; it cannot become %s", id, old.State, to))
		}
		nr := *old
		nr.encoded = nil
		nr.History = append(old.History[:len(old.History):len(old.History)],
			pos.RequestTransition{At: s.now(), From: old.State, To: to, Reason: reason})
		if mutate != nil {
			r := nr.Request
			if err := mutate(&r); err != nil {
				return reject(err)
			}
			nr.NextAttemptAt, nr.Result, nr.Error = r.NextAttemptAt.UTC().Round(0), r.Result, r.Error
		}
		now := s.now()
		nr.State, nr.UpdatedAt = to, now
		if to == pos.RequestSubmitting {
			nr.Attempts++
		}
		if to.Final() {
			nr.FinishedAt = now
		}
		if err := b.put(old, &nr); err != nil {
			return err
		}
		out = &nr
		return nil
	})
	if err != nil {
		return pos.Request{}, err
	}
	return out.Request, nil
}

// GetRequest returns one request by id (pos.ENotFound if there is none).
func (s *Store) GetRequest(ctx context.Context, id string) (pos.Request, error) {
	seq, ok := s.parseReqID(id)
	if !ok {
		return pos.Request{}, pos.Errorf(pos.ENotFound, "no request %q", id)
	}
	var out *reqRecord
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		out, err = s.openReq(tx).load(seq)
		return err
	})
	if err != nil {
		return pos.Request{}, err
	}
	if out == nil {
		return pos.Request{}, pos.Errorf(pos.ENotFound, "no request %q", id)
	}
	return out.Request, nil
}

// DueRequests returns up to max queued requests for gateway whose next
// attempt is at or before now, in (next-attempt, acceptance) order.
func (s *Store) DueRequests(ctx context.Context, gateway string, now time.Time, max int) ([]pos.Request, error) {
	prefix := append([]byte(gateway), 0)
	end := append(prefix[:len(prefix):len(prefix)], timeBytes(now)...)
	var out []pos.Request
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.openReq(tx)
		c := b.due.Cursor()
		for k, _ := c.Seek(prefix); k != nil && len(out) < max && bytes.HasPrefix(k, prefix) &&
			bytes.Compare(k[:len(end)], end) <= 0; k, _ = c.Next() {
			r, err := b.load(seqOf(k))
			if err != nil {
				return err
			}
			if r == nil {
				return errIndex("due request #%d is missing", seqOf(k))
			}
			out = append(out, r.Request)
		}
		return nil
	})
	return out, err
}

// NextRequestDue returns the earliest next-attempt time of a queued
// request for gateway; ok is false when none is queued.
func (s *Store) NextRequestDue(ctx context.Context, gateway string) (at time.Time, ok bool, err error) {
	prefix := append([]byte(gateway), 0)
	err = s.view(ctx, func(tx *bolt.Tx) error {
		if k, _ := s.openReq(tx).due.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) {
			at, ok = timeOf(k[len(prefix):]), true
		}
		return nil
	})
	return at, ok, err
}

// QueuedRequestGateways lists the gateways that have queued requests.
func (s *Store) QueuedRequestGateways(ctx context.Context) ([]string, error) {
	var out []string
	err := s.view(ctx, func(tx *bolt.Tx) error {
		c := s.openReq(tx).due.Cursor()
		for k, _ := c.First(); k != nil; {
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				return errIndex("malformed request due key %x", k)
			}
			out = append(out, string(k[:i]))
			k, _ = c.Seek(append(k[:i:i], 1))
		}
		return nil
	})
	return out, err
}

// SubmittingRequests returns the requests in submitting (at start-up:
// those whose outcome a crash left unknown).
func (s *Store) SubmittingRequests(ctx context.Context, max int) ([]pos.Request, error) {
	var out []pos.Request
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.openReq(tx)
		c := b.open.Cursor()
		for k, _ := c.First(); k != nil && len(out) < max; k, _ = c.Next() {
			r, err := b.load(seqOf(k))
			if err != nil {
				return err
			}
			if r == nil {
				return errIndex("submitting request #%d is missing", seqOf(k))
			}
			out = append(out, r.Request)
		}
		return nil
	})
	return out, err
}

// RecentRequests lists requests newest first, of one kind ("" for all),
// up to max, starting after the request id before ("" for the newest).
// next is the cursor for the following page ("" at the end).
func (s *Store) RecentRequests(ctx context.Context, kind pos.RequestKind, before string, max int) (_ []pos.Request, next string, _ error) {
	var out []pos.Request
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.openReq(tx)
		c := b.recs.Cursor()
		var k, v []byte
		if before == "" {
			k, v = c.Last()
		} else {
			seq, ok := s.parseReqID(before)
			if !ok {
				return pos.FieldErrorf(pos.EInvalid, "cursor", "is not a request id of this bridge")
			}
			c.Seek(seqKey(seq))
			k, v = c.Prev()
		}
		for ; k != nil; k, v = c.Prev() {
			if len(out) == max {
				next = out[len(out)-1].ID
				return nil
			}
			r, err := s.decodeRequest(seqOf(k), v)
			if err != nil {
				return err
			}
			if kind == "" || r.Kind == kind {
				out = append(out, r.Request)
			}
		}
		return nil
	})
	return out, next, err
}

// RequestStats is the outbox at a glance.
type RequestStats struct {
	// Pending counts queued and submitting requests.
	Pending int
	// NextDue is the earliest next attempt of a queued request (zero: none).
	NextDue time.Time
}

// RequestStats returns the outbox's counters without a scan.
func (s *Store) RequestStats(ctx context.Context) (RequestStats, error) {
	var st RequestStats
	err := s.view(ctx, func(tx *bolt.Tx) error {
		b := s.openReq(tx)
		st.Pending = int(b.pending())
		// The first key of each gateway's range: seek past one gateway
		// to reach the next.
		c := b.due.Cursor()
		for k, _ := c.First(); k != nil; {
			i := bytes.IndexByte(k, 0)
			if i < 0 || len(k) < i+17 {
				return errIndex("malformed request due key %x", k)
			}
			if at := timeOf(k[i+1:]); st.NextDue.IsZero() || at.Before(st.NextDue) {
				st.NextDue = at
			}
			k, _ = c.Seek(append(k[:i:i], 1))
		}
		return nil
	})
	return st, err
}

// PruneRequests removes up to Options.PruneBatch requests that finished
// before now minus Options.Retention, with their idempotency keys. more
// reports that another call would find more.
func (s *Store) PruneRequests(ctx context.Context, now time.Time) (removed int, more bool, _ error) {
	cutoff := timeBytes(now.Add(-s.opt.Retention))
	err := s.update(ctx, func(tx *bolt.Tx) error {
		removed, more = 0, false
		b := s.openReq(tx)
		c := b.done.Cursor()
		for k, _ := c.First(); k != nil && bytes.Compare(k[:8], cutoff) < 0; k, _ = c.First() {
			if removed == s.opt.PruneBatch {
				more = true
				return nil
			}
			seq := seqOf(k)
			r, err := b.load(seq)
			if err != nil {
				return err
			}
			if r != nil {
				if r.IdempotencyKey != "" {
					if err := b.idem.Delete(reqIdemKey(r.Kind, r.IdempotencyKey)); err != nil {
						return err
					}
				}
				if err := b.recs.Delete(seqKey(seq)); err != nil {
					return err
				}
			}
			if err := c.Delete(); err != nil {
				return err
			}
			removed++
		}
		return nil
	})
	if err != nil {
		// removed and more may still be written by a late commit (ctx
		// ended first): do not read them.
		return 0, false, err
	}
	return removed, more, nil
}

// CheckRequests verifies that every request's index entries agree with the
// records (an error matching ErrCorrupt names the first disagreement).
func (s *Store) CheckRequests(ctx context.Context) error {
	return s.view(ctx, func(tx *bolt.Tx) error { return s.checkRequests(tx) })
}

func (s *Store) checkRequests(tx *bolt.Tx) error {
	b := s.openReq(tx)
	var pending uint64
	idems := 0
	err := b.recs.ForEach(func(k, v []byte) error {
		r, err := s.decodeRequest(seqOf(k), v)
		if err != nil {
			return err
		}
		if !r.State.Valid() {
			return errIndex("request %s has unknown state %q", r.ID, r.State)
		}
		if r.IdempotencyKey != "" {
			idems++
			if got := b.idem.Get(reqIdemKey(r.Kind, r.IdempotencyKey)); !bytes.Equal(got, k) {
				return errIndex("request %s: its idempotency key does not point to it", r.ID)
			}
		}
		inDue := b.due.Get(reqDueKey(r.Gateway, r.NextAttemptAt, r.Seq)) != nil
		inOpen := b.open.Get(k) != nil
		inDone := r.State.Final() && b.done.Get(timeSeqKey(r.FinishedAt, r.Seq)) != nil
		switch {
		case (r.State == pos.RequestQueued) != inDue:
			return errIndex("request %s (%s): due index disagrees", r.ID, r.State)
		case (r.State == pos.RequestSubmitting) != inOpen:
			return errIndex("request %s (%s): submitting index disagrees", r.ID, r.State)
		case r.State.Final() && !inDone:
			return errIndex("request %s (%s): not in the finished index", r.ID, r.State)
		}
		if reqPending(r.State) {
			pending++
		}
		return nil
	})
	if err != nil {
		return err
	}
	count := func(bk *bolt.Bucket) int { return bk.Stats().KeyN }
	switch {
	case pending != b.pending():
		return errIndex("pending request count is %d, records say %d", b.pending(), pending)
	case count(b.idem) != idems:
		return errIndex("%d request idempotency keys for %d keyed requests", count(b.idem), idems)
	case uint64(count(b.due)+count(b.open)) != pending:
		return errIndex("due and submitting indexes hold %d entries for %d pending requests", count(b.due)+count(b.open), pending)
	}
	return nil
}
