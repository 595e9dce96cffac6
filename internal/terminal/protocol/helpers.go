package protocol

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// IDGen makes message IDs unique per sender: a random prefix chosen when
// the generator is made (so a restarted sender never reuses an ID) and a
// counter. Safe for concurrent use.
type IDGen struct {
	prefix string
	n      atomic.Uint64
}

// NewIDGen returns a generator whose IDs start with tag (e.g. "b" for the
// bridge, "t" for a terminal) followed by 8 random hex digits.
func NewIDGen(tag string) *IDGen {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to time.
		return &IDGen{prefix: tag + strconv.FormatInt(time.Now().UnixNano(), 36) + "-"}
	}
	return &IDGen{prefix: tag + hex.EncodeToString(b[:]) + "-"}
}

// Next returns a new ID.
func (g *IDGen) Next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 10)
}

// New returns a message of kind k for terminalID with a new ID and the
// current time; the caller sets the body.
func (g *IDGen) New(k Kind, terminalID string) Message {
	return Message{V: Version, Kind: k, ID: g.Next(), TerminalID: terminalID, Time: time.Now().UTC()}
}

// Reply returns a message of kind k answering m (Ref = m.ID).
func (g *IDGen) Reply(k Kind, m Message) Message {
	r := g.New(k, m.TerminalID)
	r.Ref = m.ID
	return r
}

// Refusal returns an error message answering m. It maps a Decode error to
// the matching code; m may be the partial message Decode returned.
func (g *IDGen) Refusal(m Message, terminalID string, err error) Message {
	code := ErrCodeBadMessage
	switch {
	case errors.Is(err, ErrUnsupportedVersion):
		code = ErrCodeUnsupportedVersion
	case errors.Is(err, ErrUnsupportedKind):
		code = ErrCodeUnsupportedKind
	}
	var re *RefusalError
	if errors.As(err, &re) {
		code = re.Code
	}
	r := g.New(KindError, terminalID)
	if checkID("ref", m.ID, true) == nil {
		r.Ref = m.ID
	}
	msg := err.Error()
	if len(msg) > maxTextLen {
		msg = msg[:maxTextLen]
	}
	r.Error = &Error{Code: code, Message: msg}
	return r
}

// RefusalError is an error message received from the other side, or one a
// handler wants to send back.
type RefusalError struct {
	Code    ErrorCode
	Message string
}

func (e *RefusalError) Error() string {
	if e.Message == "" {
		return "refused: " + string(e.Code)
	}
	return fmt.Sprintf("refused: %s: %s", e.Code, e.Message)
}

// Seen remembers the most recent message IDs per sender so a resent message
// is acted on once. It keeps a bounded number of IDs per key (oldest
// forgotten first). Safe for concurrent use.
type Seen struct {
	mu    sync.Mutex
	limit int
	keys  map[string]*ring
}

type ring struct {
	set   map[string]struct{}
	order []string
	next  int
}

// NewSeen returns a Seen keeping up to perKey IDs for each key.
func NewSeen(perKey int) *Seen {
	if perKey <= 0 {
		perKey = 256
	}
	return &Seen{limit: perKey, keys: make(map[string]*ring)}
}

// Add records id under key and reports whether it was new.
func (s *Seen) Add(key, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.keys[key]
	if r == nil {
		r = &ring{set: make(map[string]struct{})}
		s.keys[key] = r
	}
	if _, ok := r.set[id]; ok {
		return false
	}
	if len(r.order) < s.limit {
		r.order = append(r.order, id)
	} else {
		delete(r.set, r.order[r.next])
		r.order[r.next] = id
		r.next = (r.next + 1) % s.limit
	}
	r.set[id] = struct{}{}
	return true
}

// Has reports whether id is recorded under key.
func (s *Seen) Has(key, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.keys[key]
	if r == nil {
		return false
	}
	_, ok := r.set[id]
	return ok
}
