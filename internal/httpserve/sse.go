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
}

// Stream answers r with Server-Sent Events: a first comment line, then
// write(w, item) for every item from events, flushed at once, with a
// keep-alive comment every KeepAlive. It returns when the client goes
// away, o.Stop closes, events closes, a write fails, or (with
// o.Overflow) events was found full. It returns ErrNoStreaming, having
// written nothing, when w cannot flush.
//
// Only Stream receives from events, so once the sender found it full
// (and dropped an item) it stays full until Stream takes the next item:
// checking before each take sees every loss (and, rarely, a full channel
// that lost nothing).
func Stream[T any](w http.ResponseWriter, r *http.Request, events <-chan T, write func(io.Writer, T) error, o StreamOptions) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return ErrNoStreaming
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": %s\n\n", o.Comment)
	fl.Flush()
	tick := time.NewTicker(KeepAlive)
	defer tick.Stop()
	for {
		if o.Overflow != nil && cap(events) > 0 && len(events) == cap(events) {
			if o.Overflow(w) == nil {
				fl.Flush()
			}
			return nil
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-o.Stop:
			return nil
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			fl.Flush()
		case item, open := <-events:
			if !open {
				return nil
			}
			if err := write(w, item); err != nil {
				return nil
			}
			fl.Flush()
		}
	}
}
