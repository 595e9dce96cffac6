package diag

import (
	"sync"
	"time"
)

// Frame is one terminal link frame, for the live trace. It holds sizes
// and kinds, never payloads: a payload could carry customer data.
type Frame struct {
	At       time.Time `json:"at"`
	Dir      string    `json:"dir"` // "in" (from the terminal) or "out"
	Terminal string    `json:"terminal"`
	Link     string    `json:"link"`
	Kind     string    `json:"kind"`
	Bytes    int       `json:"bytes"`
	Note     string    `json:"note,omitempty"` // e.g. "crc error", "resend"
}

// Trace keeps the last frames and feeds live subscribers. Record never
// blocks: a slow subscriber misses frames.
type Trace struct {
	mu   sync.Mutex
	ring []Frame
	next int
	full bool
	subs map[chan Frame]struct{}
}

// NewTrace keeps the last n frames.
func NewTrace(n int) *Trace { return &Trace{ring: make([]Frame, n), subs: map[chan Frame]struct{}{}} }

// Record adds a frame.
func (t *Trace) Record(f Frame) {
	if f.At.IsZero() {
		f.At = time.Now()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ring[t.next] = f
	t.next = (t.next + 1) % len(t.ring)
	t.full = t.full || t.next == 0
	for ch := range t.subs {
		select {
		case ch <- f:
		default:
		}
	}
}

// Last returns up to n frames, oldest first.
func (t *Trace) Last(n int) []Frame {
	t.mu.Lock()
	defer t.mu.Unlock()
	have := t.next
	if t.full {
		have = len(t.ring)
	}
	n = min(n, have)
	out := make([]Frame, 0, n)
	for i := n; i >= 1; i-- {
		out = append(out, t.ring[(t.next-i+len(t.ring))%len(t.ring)])
	}
	return out
}

// Subscribe returns a channel of new frames and a cancel func.
func (t *Trace) Subscribe() (<-chan Frame, func()) {
	ch := make(chan Frame, 256)
	t.mu.Lock()
	t.subs[ch] = struct{}{}
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		delete(t.subs, ch)
		t.mu.Unlock()
	}
}
