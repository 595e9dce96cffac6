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
	name string
	addr string
	log  *slog.Logger
	srv  *http.Server
	ln   net.Listener
	wg   sync.WaitGroup
	stop chan struct{}
	once sync.Once
}

// New returns a server for h on addr; name appears in errors and logs.
func New(name, addr string, h http.Handler, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{name: name, addr: addr, log: log, stop: make(chan struct{}), srv: &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
}

// Stopping is closed when Close begins: long polls and event streams
// return on it so that shutdown does not wait for them.
func (s *Server) Stopping() <-chan struct{} { return s.stop }

// Open listens and serves in the background.
func (s *Server) Open() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("%s: listen %s: %w", s.name, s.addr, err)
	}
	s.ln = ln
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(s.name+" stopped", "err", err)
		}
	}()
	return nil
}

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
