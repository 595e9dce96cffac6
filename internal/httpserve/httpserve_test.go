package httpserve_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/httpserve"
)

// handler answers /hello at once, and /wait once the server is stopping
// (as a long poll or an event stream would), telling entered when a /wait
// has begun.
func handler(srv **httpserve.Server, entered chan<- struct{}) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	})
	mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		select {
		case <-(*srv).Stopping():
			io.WriteString(w, "stopped")
		case <-r.Context().Done():
		}
	})
	return mux
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(b), errors.New(resp.Status)
	}
	return string(b), err
}

// waitAndClose starts a /wait at base, closes srv once it has begun, and
// checks that Close returns nil promptly and the /wait got its answer.
func waitAndClose(t *testing.T, srv *httpserve.Server, base string, entered <-chan struct{}) {
	t.Helper()
	type result struct {
		body string
		err  error
	}
	res := make(chan result, 1)
	go func() {
		body, err := get(base + "/wait")
		res <- result{body, err}
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// nil: every request ended before ctx did (the /wait on Stopping).
	if err := srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if r := <-res; r.err != nil || r.body != "stopped" {
		t.Errorf("/wait = %q, %v; want \"stopped\"", r.body, r.err)
	}
	select {
	case <-srv.Stopping():
	default:
		t.Error("Stopping is not closed after Close")
	}
	if err := srv.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestOpenServeClose serves over real HTTP on a loopback port; Close ends
// the waiting request through Stopping, then stops listening.
func TestOpenServeClose(t *testing.T) {
	var srv *httpserve.Server
	entered := make(chan struct{}, 1)
	srv = httpserve.New("test server", "127.0.0.1:0", handler(&srv, entered), nil)
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(srv.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL = %s, want a loopback port", srv.URL())
	}
	if body, err := get(srv.URL() + "/hello"); err != nil || body != "hello" {
		t.Fatalf("/hello = %q, %v", body, err)
	}
	waitAndClose(t, srv, srv.URL(), entered)
	if _, err := get(srv.URL() + "/hello"); err == nil {
		t.Error("still answering after Close")
	}
}

// TestNeverOpened: a server that is never opened gives its handler back to
// be served elsewhere (here httptest), and Close still closes Stopping and
// returns at once.
func TestNeverOpened(t *testing.T) {
	var srv *httpserve.Server
	entered := make(chan struct{}, 1)
	mux := handler(&srv, entered)
	srv = httpserve.New("test server", "", mux, nil)
	if got, ok := srv.Handler().(*http.ServeMux); !ok || got != mux {
		t.Fatalf("Handler() = %v, want the handler given to New", srv.Handler())
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	if body, err := get(ts.URL + "/hello"); err != nil || body != "hello" {
		t.Fatalf("/hello = %q, %v", body, err)
	}
	waitAndClose(t, srv, ts.URL, entered)
}

// TestCloseBounded: a request that ignores Stopping holds Close only until
// ctx is done; then its connection is dropped and Close says so.
func TestCloseBounded(t *testing.T) {
	entered := make(chan struct{}, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /stuck", func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-r.Context().Done()
	})
	srv := httpserve.New("test server", "127.0.0.1:0", mux, nil)
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := get(srv.URL() + "/stuck")
		res <- err
	}()
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the deadline", err)
	}
	if err := <-res; err == nil {
		t.Error("the stuck request got an answer; want its connection dropped")
	}
}

// TestOpenBusyPort: Open fails at once, naming the server and the address,
// when the port is taken.
func TestOpenBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	srv := httpserve.New("test server", addr, http.NewServeMux(), nil)
	err = srv.Open()
	if err == nil {
		srv.Close(context.Background())
		t.Fatal("Open on a busy port succeeded")
	}
	if want := "test server: listen " + addr; !strings.Contains(err.Error(), want) {
		t.Errorf("Open = %v, want it to contain %q", err, want)
	}
	if err := srv.Close(context.Background()); err != nil {
		t.Errorf("Close after a failed Open: %v", err)
	}
}

// streamFull serves one Stream of a channel that already holds two items
// and is full, and returns what the client read.
func streamFull(t *testing.T, overflow func(io.Writer) error) string {
	t.Helper()
	events := make(chan string, 2)
	events <- "a"
	events <- "b"
	close(events)
	srv := httpserve.New("test server", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := httpserve.Stream(w, r, events, func(w io.Writer, s string) error {
			_, err := io.WriteString(w, "data: "+s+"\n\n")
			return err
		}, httpserve.StreamOptions{Comment: "test", Overflow: overflow})
		if err != nil {
			t.Error(err)
		}
	}), nil)
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	body, err := get(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestStreamOverflow: with Overflow set, a channel found full (its sender
// may have dropped items) ends the stream with the overflow notice;
// without, the items are delivered as they are.
func TestStreamOverflow(t *testing.T) {
	got := streamFull(t, func(w io.Writer) error {
		_, err := io.WriteString(w, "event: overflow\n\n")
		return err
	})
	if want := ": test\n\nevent: overflow\n\n"; got != want {
		t.Errorf("with Overflow: %q, want %q", got, want)
	}
	if got, want := streamFull(t, nil), ": test\n\ndata: a\n\ndata: b\n\n"; got != want {
		t.Errorf("without Overflow: %q, want %q", got, want)
	}
}

// TestStreamStalledClient: a client that keeps its connection open but
// stops reading (a hung till) no longer holds the stream for ever: once
// the connection's buffers are full, a write not taken within
// WriteTimeout ends it.
func TestStreamStalledClient(t *testing.T) {
	returned := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	srv := httpserve.New("test server", "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		items := make(chan string)
		go func() { // feeds the stream until it returns
			big := strings.Repeat("x", 64<<10)
			for {
				select {
				case items <- big:
				case <-returned:
					return
				case <-stop:
					return
				}
			}
		}()
		_ = httpserve.Stream(w, r, items, func(w io.Writer, s string) error {
			_, err := io.WriteString(w, "data: "+s+"\n\n")
			return err
		}, httpserve.StreamOptions{Comment: "test", Stop: stop, WriteTimeout: 200 * time.Millisecond})
	}), nil)
	if err := srv.Open(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	resp, err := http.Get(srv.URL()) // the headers, then never a byte more
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("the stream to a client that stopped reading is still writing after 30 s")
	}
}
