package serial_test

import (
	"context"
	"errors"
	"io"
	"os"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/serial"
	"github.com/posbridge/posbridge/internal/testutil"
)

// ptyPair opens a pseudo-terminal. The tty side is what the code under test
// opens by path (like /dev/ttyACM0); the master side plays the far end. The
// returned close function is idempotent and also runs at cleanup.
func ptyPair(t testing.TB) (master *os.File, ttyPath string, closeAll func()) {
	t.Helper()
	return testutil.PtyPairCloser(t)
}

// rawFarEnd reads frames from the master side of a pty in the background.
type rawFarEnd struct {
	w      io.Writer
	frames chan serial.Frame
}

func newRawFarEnd(t testing.TB, m *os.File) *rawFarEnd {
	r := &rawFarEnd{w: m, frames: make(chan serial.Frame, 64)}
	go func() {
		var d serial.Decoder
		buf := make([]byte, 4096)
		for {
			n, err := m.Read(buf)
			if n > 0 {
				d.Write(buf[:n])
				for {
					f, err := d.Next()
					if errors.Is(err, serial.ErrNeedMore) {
						break
					}
					if err == nil {
						r.frames <- f
					}
				}
			}
			if err != nil {
				close(r.frames)
				return
			}
		}
	}()
	return r
}

func (r *rawFarEnd) write(t testing.TB, b []byte) {
	t.Helper()
	if _, err := r.w.Write(b); err != nil {
		t.Fatalf("far end write: %v", err)
	}
}

func (r *rawFarEnd) next(t testing.TB) serial.Frame {
	t.Helper()
	select {
	case f, ok := <-r.frames:
		if !ok {
			t.Fatal("far end closed")
		}
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame from the near end")
	}
	return serial.Frame{}
}

// collector gathers delivered payloads.
type collector struct {
	ch chan string
}

func newCollector() *collector       { return &collector{ch: make(chan string, 64)} }
func (c *collector) onData(p []byte) { c.ch <- string(p) }
func (c *collector) next(t testing.TB) string {
	t.Helper()
	select {
	case s := <-c.ch:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("nothing delivered")
	}
	return ""
}
func (c *collector) none(t testing.TB) {
	t.Helper()
	select {
	case s := <-c.ch:
		t.Fatalf("unexpected delivery %q", s)
	case <-time.After(100 * time.Millisecond):
	}
}

func openConn(t testing.TB, path string, cfg serial.ConnConfig) *serial.Conn {
	t.Helper()
	p, err := serial.OpenPort(path, 115200)
	if err != nil {
		t.Fatal(err)
	}
	c := serial.NewConn(p, cfg)
	t.Cleanup(func() { c.Close() })
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConnRoundTrip(t *testing.T) {
	m, path, _ := ptyPair(t)
	near, far := newCollector(), newCollector()
	a := openConn(t, path, serial.ConnConfig{OnData: near.onData})
	b := serial.NewConn(m, serial.ConnConfig{OnData: far.onData})
	defer b.Close()
	ctx := ctxT(t)
	for i, msg := range []string{`{"kind":"hello"}`, string(make([]byte, serial.MaxPayload))} {
		if err := a.Send(ctx, []byte(msg)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if got := far.next(t); got != msg {
			t.Fatalf("far end got %d bytes, want %d", len(got), len(msg))
		}
		if err := b.Send(ctx, []byte(msg)); err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if got := near.next(t); got != msg {
			t.Fatalf("near end got %d bytes, want %d", len(got), len(msg))
		}
	}
	if s := a.Stats(); s.Retransmits != 0 || s.FrameErrors() != 0 {
		t.Errorf("clean line had errors: %+v", s)
	}
}

func TestConnCorruptAndPartialFrames(t *testing.T) {
	m, path, _ := ptyPair(t)
	got := newCollector()
	c := openConn(t, path, serial.ConnConfig{OnData: got.onData, StallTimeout: 50 * time.Millisecond})
	far := newRawFarEnd(t, m)

	corrupt := serial.AppendFrame(nil, serial.TypeData, 1, []byte("first"))
	corrupt[6] ^= 0x01
	far.write(t, append([]byte("\x00\xffgarbage\x02"), corrupt...))
	if f := far.next(t); f.Type != serial.TypeNak || f.Seq != 1 {
		t.Fatalf("want NAK 1 for a corrupt frame, got %c %d", f.Type, f.Seq)
	}
	// The sender answers the NAK by resending, intact this time.
	far.write(t, serial.AppendFrame(nil, serial.TypeData, 1, []byte("first")))
	if f := far.next(t); f.Type != serial.TypeAck || f.Seq != 1 {
		t.Fatalf("want ACK 1, got %c %d", f.Type, f.Seq)
	}
	if s := got.next(t); s != "first" {
		t.Fatalf("delivered %q", s)
	}

	// Half a frame, then the sender gives up on it and starts over.
	full := serial.AppendFrame(nil, serial.TypeData, 2, []byte("second, long enough to be cut"))
	far.write(t, full[:len(full)/2])
	time.Sleep(120 * time.Millisecond) // let the partial frame go stale
	far.write(t, full)
	if f := far.next(t); f.Type != serial.TypeAck || f.Seq != 2 {
		t.Fatalf("want ACK 2, got %c %d", f.Type, f.Seq)
	}
	if s := got.next(t); s != "second, long enough to be cut" {
		t.Fatalf("delivered %q", s)
	}
	got.none(t)
	s := c.Stats()
	if s.Decoder.CRCErrors == 0 || s.NaksOut == 0 || s.Decoder.SkippedBytes == 0 {
		t.Errorf("errors not counted: %+v", s)
	}
}

func TestConnLostAck(t *testing.T) {
	m, path, _ := ptyPair(t)
	got := newCollector()
	// Many retries: the test reads frames at its own pace, slow under load.
	c := openConn(t, path, serial.ConnConfig{OnData: got.onData, AckTimeout: 100 * time.Millisecond, MaxRetries: 100})
	far := newRawFarEnd(t, m)

	t.Run("ResentFrameDeliveredOnce", func(t *testing.T) {
		frame := serial.AppendFrame(nil, serial.TypeData, 5, []byte("pay"))
		far.write(t, frame)
		if f := far.next(t); f.Type != serial.TypeAck || f.Seq != 5 {
			t.Fatalf("want ACK 5, got %c %d", f.Type, f.Seq)
		}
		// The far end never saw that ACK: it resends the same frame.
		far.write(t, frame)
		if f := far.next(t); f.Type != serial.TypeAck || f.Seq != 5 {
			t.Fatalf("resend not acknowledged: %c %d", f.Type, f.Seq)
		}
		far.write(t, serial.AppendFrame(nil, serial.TypeData, 6, []byte("next")))
		far.next(t)
		if a, b := got.next(t), got.next(t); a != "pay" || b != "next" {
			t.Fatalf("delivered %q, %q", a, b)
		}
		got.none(t)
		if d := c.Stats().Duplicates; d != 1 {
			t.Errorf("Duplicates = %d, want 1", d)
		}
	})
	t.Run("SenderResendsUntilAcked", func(t *testing.T) {
		errc := make(chan error, 1)
		go func() { errc <- c.Send(ctxT(t), []byte("result")) }()
		first := far.next(t) // dropped on the floor: no ACK
		second := far.next(t)
		if first.Type != serial.TypeData || second.Seq != first.Seq || second.CRC != first.CRC {
			t.Fatalf("resend differs: %+v vs %+v", first, second)
		}
		far.write(t, serial.AppendFrame(nil, serial.TypeAck, second.Seq, nil))
		if err := <-errc; err != nil {
			t.Fatalf("Send: %v", err)
		}
		if r := c.Stats().Retransmits; r < 1 {
			t.Errorf("Retransmits = %d", r)
		}
	})
	t.Run("GivesUp", func(t *testing.T) {
		c2 := openConn(t, path, serial.ConnConfig{AckTimeout: 20 * time.Millisecond, MaxRetries: 2})
		err := c2.Send(ctxT(t), []byte("into the void"))
		if !errors.Is(err, serial.ErrNoAck) {
			t.Fatalf("err = %v, want ErrNoAck", err)
		}
	})
}
