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

// Stream answers r with Server-Sent Events: a first comment line, then
// write(w, item) for every item from events, flushed at once, with a
// keep-alive comment every KeepAlive. It returns when the client goes
// away, stop closes (the server is stopping), events closes, or a write
// fails. It returns ErrNoStreaming, having written nothing, when w cannot
// flush.
func Stream[T any](w http.ResponseWriter, r *http.Request, stop <-chan struct{}, comment string,
	events <-chan T, write func(io.Writer, T) error) error {
	fl, ok := w.(http.Flusher)
	if !ok {
		return ErrNoStreaming
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": %s\n\n", comment)
	fl.Flush()
	tick := time.NewTicker(KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return nil
		case <-stop:
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
