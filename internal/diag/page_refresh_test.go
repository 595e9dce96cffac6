package diag_test

import (
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/diag"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/testutil"
)

// TestPageRefreshShowsChanges: the status page, left open in a browser,
// refreshes itself; every section must follow, not only the readiness
// badge. The page's refresh updated the badge, the checks, the queue
// depth and the request summary, but left the gateway "online" and the
// terminal "connected" after both had gone down, next to a readiness
// table saying FAIL.
func TestPageRefreshShowsChanges(t *testing.T) {
	bin, args := testutil.Chromium(t)
	now := time.Now()
	var down atomic.Bool
	src := diag.Sources{
		Version: "1.2.3",
		Gateway: func() diag.GatewayHealth {
			if down.Load() {
				return diag.GatewayHealth{URL: "https://gw.example", Online: false, LastOK: now.Add(-10 * time.Minute), LastError: "dial tcp: connection refused"}
			}
			return diag.GatewayHealth{URL: "https://gw.example", Online: true, LastOK: time.Now()}
		},
		Terminals: func() []diag.TerminalHealth {
			if down.Load() {
				return []diag.TerminalHealth{{ID: "29708454", Link: "mqtt", Connected: false, LastSeen: now, LastError: "presence: offline"}}
			}
			return []diag.TerminalHealth{{ID: "29708454", Link: "mqtt", Connected: true, LastSeen: time.Now()}}
		},
		Queue: func(context.Context) (diag.QueueHealth, error) {
			if down.Load() {
				return diag.QueueHealth{ByState: map[pos.State]int{pos.StateQueued: 2}, Queued: 2, OldestQueued: now, OldestID: "co_9"}, nil
			}
			return diag.QueueHealth{ByState: map[pos.State]int{}}, nil
		},
	}
	s := diag.New(src, nil, diag.Options{})
	// The page is served as it is at first; everything goes down once the
	// browser has it, before its first refresh.
	h := s.Handler()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.URL.Path == "/" {
			down.Store(true)
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	defer s.Close(context.Background()) // ends the page's trace stream

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Virtual time lets the page's 2 s refresh timer run several times.
	out, err := exec.CommandContext(ctx, bin, append(args, "--virtual-time-budget=7000", "--dump-dom", "http://"+ln.Addr().String()+"/")...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	page := string(out)
	if !down.Load() {
		t.Fatal("the page was never served")
	}
	section := func(id string) string {
		i := strings.Index(page, `<section id="`+id+`"`)
		if i < 0 {
			t.Fatalf("the page lacks section %s:\n%s", id, page)
		}
		j := strings.Index(page[i:], "</section>")
		return page[i : i+j]
	}
	for _, c := range []struct{ id, want string }{
		{"checks-section", "FAIL"},
		{"gateway-section", "OFFLINE"},
		{"gateway-section", "connection refused"},
		{"terminals-section", "DOWN"},
		{"terminals-section", "presence: offline"},
		{"queue-section", "co_9"},
		{"queue-section", "queued=2"},
	} {
		if !strings.Contains(section(c.id), c.want) {
			t.Errorf("after the refresh, %s lacks %q:\n%s", c.id, c.want, section(c.id))
		}
	}
	if !strings.Contains(page, `id="overall" class="badge bad">NOT READY`) {
		t.Error("the overall badge does not say NOT READY")
	}
	if !strings.Contains(page, `id="trace-section"`) || !strings.Contains(page, `id="trace-body"`) {
		t.Error("the refresh lost the live trace")
	}
}
