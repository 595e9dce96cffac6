package httpserve

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ErrNoStreaming is returned by Stream when the connection cannot flush.
var ErrNoStreaming = errors.New("streaming unsupported by the connection")

// KeepAlive is how often Stream writes a comment line so that proxies do
// not close an idle stream.
const KeepAlive = 15 * time.Second

// WriteTimeout is StreamOptions.WriteTimeout's default.
const WriteTimeout = time.Minute

// StreamOptions configures Stream.
type StreamOptions struct {
	// Comment is the stream's first line (an SSE comment).
	Comment string
	// Stop ends the stream when closed (the server is stopping).
	Stop <-chan struct{}
	// Overflow, if set, is for a sender that drops what the channel
	// cannot take: when Stream finds events full, items may have been
	// lost, so it writes Overflow's notice and ends the stream (the
	// client reconnects and reads again what it follows). Nil: a full
	// channel is not reported (a live trace may have gaps).
	Overflow func(io.Writer) error
	// WriteTimeout ends the stream when a write (an item, a keep-alive)
	// is not taken by the client within it (default WriteTimeout). A
	// client that stopped reading without closing the connection (its
	// process hung) would otherwise hold the stream's goroutine and its
	// subscription until the server stops.
	WriteTimeout time.Duration
}

// Stream answers r with Server-Sent Events: a first comment line, then
// write(w, item) for every item from events, flushed at once, with a
// keep-alive comment every KeepAlive. It returns when the client goes
// away, o.Stop closes, events closes, a write fails or is not taken
// within o.WriteTimeout, or (with o.Overflow) events was found full. It
// returns ErrNoStreaming, having written nothing, when w cannot flush.
//
// Only Stream receives from events, so once the sender found it full
// (and dropped an item) it stays full until Stream takes the next item:
// checking before each take sees every loss (and, rarely, a full channel
// that lost nothing).
func Stream[T any](w http.ResponseWriter, r *http.Request, events <-chan T, write func(io.Writer, T) error, o StreamOptions) error {
	if _, ok := w.(http.Flusher); !ok {
		return ErrNoStreaming
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = WriteTimeout
	}
	rc := http.NewResponseController(w)
	// send writes and flushes under the write deadline; false when the
	// client did not take it (the connection is then done for).
	send := func(f func() error) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(o.WriteTimeout)) // where unsupported, unbounded as before
		if f() != nil {
			return false
		}
		return rc.Flush() == nil
	}
	// The server's own last write (the end of the chunked body) must not
	// run into a deadline set for an earlier item.
	defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if !send(func() error { _, err := fmt.Fprintf(w, ": %s\n\n", o.Comment); return err }) {
		return nil
	}
	tick := time.NewTicker(KeepAlive)
	defer tick.Stop()
	for {
		if o.Overflow != nil && cap(events) > 0 && len(events) == cap(events) {
			send(func() error { return o.Overflow(w) })
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-o.Stop:
			return nil
		case <-tick.C:
			if !send(func() error { _, err := io.WriteString(w, ": keep-alive\n\n"); return err }) {
				return nil
			}
		case item, open := <-events:
			if !open {
				return nil
			}
			if !send(func() error { return write(w, item) }) {
				return nil
			}
		}
	}
}
