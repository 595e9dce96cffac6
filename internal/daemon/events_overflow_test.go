package daemon_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
)

// TestEventsOverflowTold: a till that reads its event stream too slowly
// loses events (the engine drops what a subscriber cannot take rather
// than slow down). The till must then be told, or it waits forever for
// a checkout's next state: the stream says "overflow" and ends, so the
// till reconnects and GETs the checkouts it follows. It used to go on as
// if nothing was missing.
func TestEventsOverflowTold(t *testing.T) {
	s := startStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// A till with a small receive window that does not read for a while.
	// (Its window is opened again before it reads: a 1 KiB window would
	// take minutes to drain.)
	dialer := &net.Dialer{}
	conns := make(chan *net.TCPConn, 1)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err == nil {
			conns <- c.(*net.TCPConn)
			err = c.(*net.TCPConn).SetReadBuffer(1024)
		}
		return c, err
	}}}
	defer hc.CloseIdleConnections()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Daemon.APIURL()+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()

	// Create checkouts until the engine has dropped a change for the
	// stream (its only subscriber), then one more, whose change is
	// dropped too: the stream is still full.
	c := s.Client()
	body := api.CreateBody{TerminalID: "29708454", Amount: "1.000", Description: strings.Repeat("d", 255), TillRef: strings.Repeat("r", 64)}
	var n atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && s.Daemon.Engine().Status().DroppedNotifications == 0 && n.Load() < 50000 {
				if _, _, err := c.Create(ctx, fmt.Sprint("overflow-", n.Add(1)), body); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() || s.Daemon.Engine().Status().DroppedNotifications == 0 {
		t.Fatalf("no change dropped after %d checkouts", n.Load())
	}
	last, _, err := c.Create(ctx, "overflow-last", body)
	if err != nil {
		t.Fatal(err)
	}

	// Now the till reads: it must see the last checkout, or be told that
	// it missed events (then the stream ends).
	if err := (<-conns).SetReadBuffer(4 << 20); err != nil {
		t.Fatal(err)
	}
	readCtx, readCancel := context.WithTimeout(ctx, 20*time.Second)
	defer readCancel()
	go func() {
		<-readCtx.Done()
		resp.Body.Close()
	}()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	overflow := false
	for sc.Scan() && readCtx.Err() == nil {
		line := sc.Text()
		if line == "event: overflow" {
			overflow = true
		}
		if data, ok := strings.CutPrefix(line, "data: "); ok && !overflow {
			var co pos.Checkout
			if err := json.Unmarshal([]byte(data), &co); err != nil {
				t.Fatalf("event data: %v: %s", err, data)
			}
			if co.ID == last.ID {
				t.Logf("the last checkout's event arrived after %d checkouts; nothing to tell", n.Load())
				return
			}
		}
	}
	switch {
	case readCtx.Err() != nil:
		t.Fatalf("after %d checkouts and dropped changes, the stream neither delivered checkout %s nor said it overflowed (overflow seen: %v)", n.Load(), last.ID, overflow)
	case !overflow:
		t.Fatalf("the stream ended (%v) without saying it overflowed", sc.Err())
	}
}
