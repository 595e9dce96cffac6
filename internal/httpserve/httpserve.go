// Package httpserve is the lifecycle shared by posbridge's local HTTP
// endpoints (the till API, the diagnostics endpoint and the gateway
// simulators): a server that owns its listener (a busy port fails at
// Open), serves in one goroutine, and shuts down within a bound, ending
// its long-lived streams first.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves one handler on one address.
type Server struct {
	name   string
	addr   string
	log    *slog.Logger
	srv    *http.Server
	ln     net.Listener
	wg     sync.WaitGroup
	stop   chan struct{}
	once   sync.Once
	failed chan error
}

// New returns a server for h on addr; name appears in errors and logs.
func New(name, addr string, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{name: name, addr: addr, log: log, stop: make(chan struct{}), failed: make(chan error, 1), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// Stopping is closed when Close begins: long polls and event streams
// return on it so that shutdown does not wait for them.
func (s *Server) Stopping() <-chan struct{} { return s.stop }

// Open listens and serves in the background. A listener that fails
// later (its socket shut down or closed under it, an accept error that is
// not temporary) ends serving: the error is logged and sent on Failed.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s: listen %s: %w", s.name, s.addr, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.srv.Serve(ln)
		if err == nil || errors.Is(err, http.ErrServerClosed) {
			return
		}
		select {
		case <-s.stop:
			return // Close began: an accept failing now is the shutdown's
		default:
		}
		err = fmt.Errorf("%s on %s stopped accepting connections: %w", s.name, ln.Addr(), err)
		s.log.Error(s.name+" stopped accepting connections", "addr", ln.Addr().String(), "err", err)
		s.failed <- err
	}()
	return nil
}

// Failed receives the error that ended serving when the listener failed
// after Open and before Close; nothing is sent when Close ends it. The
// server then answers no one: its owner must stop, or Close it and Open
// another.
func (s *Server) Failed() <-chan error { return s.failed }

// URL is the base URL, e.g. http://127.0.0.1:8470 (after Open).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Handler is the handler given to New, for serving it some other way (in
// httptest, say) when the server is never opened. Close still closes
// Stopping then, and returns at once.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// Close ends streams, then shuts down within ctx (dropping what is left).
func (s *Server) Close(ctx context.Context) error {
	s.once.Do(func() { close(s.stop) })
	if s.ln == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
	return err
}
