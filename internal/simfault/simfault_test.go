package simfault_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/simfault"
)

func TestParse(t *testing.T) {
	extra := simfault.Kind("malformed-hex")
	known := append(append([]simfault.Kind{}, simfault.Kinds...), extra)
	t.Run("OK", func(t *testing.T) {
		for _, tc := range []struct {
			in   string
			want simfault.Fault
		}{
			{"latency", simfault.Fault{Kind: simfault.Latency}},
			{"latency=1500ms", simfault.Fault{Kind: simfault.Latency, Latency: 1500 * time.Millisecond}},
			{"latency=0s", simfault.Fault{Kind: simfault.Latency}},
			{"5xx", simfault.Fault{Kind: simfault.Status5xx}},
			{"5xx=503", simfault.Fault{Kind: simfault.Status5xx, Status: 503}},
			{"5xx=599:2", simfault.Fault{Kind: simfault.Status5xx, Status: 599, Count: 2}},
			{"429:0", simfault.Fault{Kind: simfault.Status429}},
			{"reset-before-read:3", simfault.Fault{Kind: simfault.ResetBeforeRead, Count: 3}},
			{"reset-after-read@/v1/customers", simfault.Fault{Kind: simfault.ResetAfterRead, Path: "/v1/customers"}},
			{"apply-then-drop%0.25", simfault.Fault{Kind: simfault.ApplyThenDrop, Probability: 0.25}},
			{"apply-then-drop%1", simfault.Fault{Kind: simfault.ApplyThenDrop, Probability: 1}},
			{"5xx=502:4%0.5@custom", simfault.Fault{Kind: simfault.Status5xx, Status: 502, Count: 4, Probability: 0.5, Path: "custom"}},
			// The path is everything after the first @, separators included.
			{"429@/a:b%c@d", simfault.Fault{Kind: simfault.Status429, Path: "/a:b%c@d"}},
			{"malformed-hex:1", simfault.Fault{Kind: extra, Count: 1}},
		} {
			got, err := simfault.Parse(tc.in, known)
			if err != nil {
				t.Errorf("Parse(%q): %v", tc.in, err)
				continue
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
		}
	})
	t.Run("NilKnownIsGeneric", func(t *testing.T) {
		if _, err := simfault.Parse("apply-then-drop", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := simfault.Parse("malformed-hex", nil); err == nil {
			t.Fatal("a simulator-specific kind parsed against the generic kinds")
		}
	})
	t.Run("Err", func(t *testing.T) {
		for _, tc := range []struct{ in, want string }{
			{"", `unknown kind ""`},
			{"boom", `unknown kind "boom"`},
			{"5XX", `unknown kind "5XX"`},
			{"latency:2=1s", "count must be a non-negative integer"}, // the value goes before the count
			{"5xx%0", "probability must be in (0,1]"},
			{"5xx%-0.5", "probability must be in (0,1]"},
			{"5xx%1.5", "probability must be in (0,1]"},
			{"5xx%half", "probability must be in (0,1]"},
			{"5xx%", "probability must be in (0,1]"},
			{"429:x", "count must be a non-negative integer"},
			{"429:-1", "count must be a non-negative integer"},
			{"429:", "count must be a non-negative integer"},
			{"latency=fast", `bad latency "fast"`},
			{"latency=-1s", `bad latency "-1s"`},
			{"latency=", `bad latency ""`},
			{"5xx=200", "status must be 500..599"},
			{"5xx=600", "status must be 500..599"},
			{"5xx=abc", "status must be 500..599"},
			{"429=1", "429 takes no value"},
			{"reset-before-read=1", "reset-before-read takes no value"},
			{"malformed-hex=x", "malformed-hex takes no value"},
		} {
			_, err := simfault.Parse(tc.in, known)
			if err == nil {
				t.Errorf("Parse(%q) accepted", tc.in)
				continue
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %q, want it to say %q", tc.in, err, tc.want)
			}
			if !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("Parse(%q) = %q, want it to quote the spec", tc.in, err)
			}
		}
	})
}

func TestSetDefaults(t *testing.T) {
	var s simfault.Set
	s.Inject(simfault.Fault{Kind: simfault.Latency})
	s.Inject(simfault.Fault{Kind: simfault.Status5xx})
	s.Inject(simfault.Fault{Kind: simfault.Latency, Latency: time.Millisecond})
	s.Inject(simfault.Fault{Kind: simfault.Status5xx, Status: 503})
	s.Inject(simfault.Fault{Kind: simfault.Status429})
	want := []simfault.Fault{
		{Kind: simfault.Latency, Latency: 2 * time.Second},
		{Kind: simfault.Status5xx, Status: 500},
		{Kind: simfault.Latency, Latency: time.Millisecond},
		{Kind: simfault.Status5xx, Status: 503},
		{Kind: simfault.Status429},
	}
	if got := s.Faults(); !reflect.DeepEqual(got, want) {
		t.Fatalf("Faults() = %+v, want %+v", got, want)
	}
	s.Clear()
	if got := s.Faults(); len(got) != 0 {
		t.Fatalf("after Clear: %+v", got)
	}
}

func TestTake(t *testing.T) {
	t.Run("Count", func(t *testing.T) {
		var s simfault.Set
		s.Inject(simfault.Fault{Kind: simfault.Status5xx, Count: 2})
		s.Inject(simfault.Fault{Kind: simfault.Status429}) // until cleared
		for i := range 2 {
			hit := s.Take("/x")
			if _, ok := hit[simfault.Status5xx]; !ok || len(hit) != 2 {
				t.Fatalf("request %d: hit %v, want 5xx and 429", i, hit)
			}
			if got, want := s.Faults()[0].Count, 1-i; i == 0 && got != want {
				t.Fatalf("5xx count left after one hit = %d, want %d", got, want)
			}
		}
		hit := s.Take("/x")
		if _, ok := hit[simfault.Status5xx]; ok {
			t.Fatal("5xx:2 hit a third request")
		}
		if _, ok := hit[simfault.Status429]; !ok {
			t.Fatal("429 (no count) stopped hitting")
		}
		if got := s.Faults(); len(got) != 1 || got[0].Kind != simfault.Status429 {
			t.Fatalf("used-up fault still listed: %+v", got)
		}
		if got, want := s.Fired(), map[simfault.Kind]int{simfault.Status5xx: 2, simfault.Status429: 3}; !reflect.DeepEqual(got, want) {
			t.Fatalf("Fired() = %v, want %v", got, want)
		}
	})
	t.Run("OnePerKind", func(t *testing.T) {
		// The first fault of a kind wins; the second is neither used nor
		// consumed.
		var s simfault.Set
		s.Inject(simfault.Fault{Kind: simfault.Status5xx, Status: 502, Count: 1})
		s.Inject(simfault.Fault{Kind: simfault.Status5xx, Status: 504, Count: 1})
		if got := s.Take("/")[simfault.Status5xx].Status; got != 502 {
			t.Fatalf("first request got status %d, want 502", got)
		}
		if got := s.Take("/")[simfault.Status5xx].Status; got != 504 {
			t.Fatalf("second request got status %d, want 504", got)
		}
		if hit := s.Take("/"); len(hit) != 0 {
			t.Fatalf("third request hit %v", hit)
		}
	})
	t.Run("Path", func(t *testing.T) {
		var s simfault.Set
		s.Inject(simfault.Fault{Kind: simfault.ResetBeforeRead, Path: "customers", Count: 1})
		if hit := s.Take("/v1/payments"); len(hit) != 0 {
			t.Fatalf("other path hit %v", hit)
		}
		if got := s.Faults()[0].Count; got != 1 {
			t.Fatalf("a miss consumed the count: %d left", got)
		}
		if _, ok := s.Take("/v1/customers")[simfault.ResetBeforeRead]; !ok {
			t.Fatal("matching path (substring) missed")
		}
		if len(s.Faults()) != 0 {
			t.Fatal("fault not used up")
		}
	})
	t.Run("Probability", func(t *testing.T) {
		var l simfault.List
		l = append(l, simfault.Arm(simfault.Fault{Kind: simfault.Status429, Probability: 0.3}),
			simfault.Arm(simfault.Fault{Kind: simfault.ApplyThenDrop, Probability: 0.6, Count: 1}),
			simfault.Arm(simfault.Fault{Kind: simfault.Latency, Path: "nowhere", Probability: 0.9}),
			simfault.Arm(simfault.Fault{Kind: simfault.Status5xx}))
		rolls := 0
		hit := l.Take("/v1/customers", func() float64 { rolls++; return 0.5 })
		if _, ok := hit[simfault.Status429]; ok {
			t.Error("roll 0.5 hit a fault of probability 0.3")
		}
		if _, ok := hit[simfault.ApplyThenDrop]; !ok {
			t.Error("roll 0.5 missed a fault of probability 0.6")
		}
		if _, ok := hit[simfault.Status5xx]; !ok {
			t.Error("probability 0 (always) missed")
		}
		if rolls != 2 {
			t.Errorf("rolled %d times, want 2 (not for a path that does not match, nor for probability 0)", rolls)
		}
		if len(l) != 3 {
			t.Errorf("list has %d faults after the count-1 fault fired, want 3", len(l))
		}
	})
	t.Run("ProbabilityShare", func(t *testing.T) {
		var s simfault.Set
		s.Inject(simfault.Fault{Kind: simfault.Status5xx, Probability: 0.5})
		n := 0
		for range 2000 {
			if _, ok := s.Take("/")[simfault.Status5xx]; ok {
				n++
			}
		}
		if n < 800 || n > 1200 {
			t.Fatalf("probability 0.5 hit %d of 2000", n)
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		var s simfault.Set
		s.Inject(simfault.Fault{Kind: simfault.Status5xx, Count: 100})
		var wg sync.WaitGroup
		var mu sync.Mutex
		hits := 0
		for range 8 {
			wg.Go(func() {
				for range 50 {
					if _, ok := s.Take("/")[simfault.Status5xx]; ok {
						mu.Lock()
						hits++
						mu.Unlock()
					}
					_ = s.Faults()
				}
			})
		}
		wg.Wait()
		if hits != 100 {
			t.Fatalf("5xx:100 hit %d of 400 concurrent requests", hits)
		}
	})
}

func TestSleep(t *testing.T) {
	if !simfault.Sleep(context.Background(), time.Millisecond, nil) {
		t.Fatal("Sleep cut short with nothing to stop it")
	}
	stop := make(chan struct{})
	close(stop)
	start := time.Now()
	if simfault.Sleep(context.Background(), time.Minute, stop) {
		t.Fatal("Sleep ran on after stop closed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if simfault.Sleep(ctx, time.Minute, nil) {
		t.Fatal("Sleep ran on after ctx was done")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Sleep did not return at once")
	}
}

// TestResetAndDrop checks what a client sees on the wire: an RST for
// Reset, an orderly end of stream for Drop, and no answer from either.
func TestResetAndDrop(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(http.ResponseWriter)
		rst  bool
	}{
		{"Reset", simfault.Reset, true},
		{"Drop", simfault.Drop, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body) // read to the end: no unread bytes to force an RST
				tc.do(w)
			}))
			defer srv.Close()
			if !strings.HasPrefix(srv.Listener.Addr().String(), "127.0.0.1:") {
				t.Fatalf("test server on %s, want 127.0.0.1", srv.Listener.Addr())
			}
			conn, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(conn, "POST /x HTTP/1.1\r\nHost: sim\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
				t.Fatal(err)
			}
			n, err := io.ReadAll(conn)
			if len(n) != 0 {
				t.Fatalf("got an answer: %q", n)
			}
			switch {
			case tc.rst && runtime.GOOS != "windows" && !errors.Is(err, syscall.ECONNRESET):
				t.Fatalf("read: %v, want connection reset", err)
			case tc.rst && err == nil:
				t.Fatal("read ended cleanly, want a reset")
			case !tc.rst && err != nil:
				t.Fatalf("read: %v, want a clean end of stream", err)
			}

			// Through net/http, the client gets an error, no response.
			resp, err := http.Post(srv.URL+"/x", "application/json", strings.NewReader("{}"))
			if err == nil {
				resp.Body.Close()
				t.Fatalf("http client got HTTP %d", resp.StatusCode)
			}
		})
	}
}

func TestHandleAdmin(t *testing.T) {
	var set simfault.Set
	mux := http.NewServeMux()
	extra := simfault.Kind("expire-token")
	simfault.HandleAdmin(mux, &set, append(append([]simfault.Kind{}, simfault.Kinds...), extra))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(method, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/_sim/faults", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", method, ct)
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", ""); code != 200 || body != "[]" {
		t.Fatalf("GET empty: %d %s", code, body)
	}
	if code, body := do("POST", `{"spec":"5xx=503:2@customers"}`); code != 200 || body != `[{"kind":"5xx","path":"customers","count":2,"status":503}]` {
		t.Fatalf("POST spec: %d %s", code, body)
	}
	if code, body := do("POST", `{"kind":"expire-token","count":1}`); code != 200 || !strings.Contains(body, `{"kind":"expire-token","count":1}`) {
		t.Fatalf("POST object: %d %s", code, body)
	}
	if code, body := do("POST", `{"kind":"latency"}`); code != 200 || !strings.Contains(body, `"latency":2000000000`) {
		t.Fatalf("POST object gets defaults: %d %s", code, body)
	}
	var got []simfault.Fault
	_, body := do("GET", "")
	if err := json.Unmarshal([]byte(body), &got); err != nil || len(got) != 3 || got[0].Status != 503 {
		t.Fatalf("GET after POSTs: %s (%v)", body, err)
	}
	if code, body := do("POST", `{"spec":"boom"}`); code != 400 || !strings.Contains(body, `unknown kind \"boom\"`) {
		t.Fatalf("POST bad spec: %d %s", code, body)
	}
	if code, body := do("POST", `not json`); code != 400 || !strings.Contains(body, "spec") {
		t.Fatalf("POST garbage: %d %s", code, body)
	}
	if code, body := do("DELETE", ""); code != 200 || body != "[]" {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if n := len(set.Faults()); n != 0 {
		t.Fatalf("%d faults after DELETE", n)
	}
}
