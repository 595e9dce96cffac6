package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// A run function that blocks (a hung serial open, a gateway that never
// answers) must not hold up Start.
func TestStartDoesNotBlock(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	p := newProgram(func(ctx context.Context) error { <-release; return nil }, nil, 50*time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- p.Start(nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start blocked on the run function")
	}
	// A run that ignores its context: Stop gives up after the bound.
	if err := p.Stop(nil); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("Stop = %v, want ErrStopTimeout", err)
	}
	if err := p.result(); !errors.Is(err, ErrStopTimeout) {
		t.Fatalf("result = %v", err)
	}
}

func TestStopCancelsAndWaits(t *testing.T) {
	for _, name := range []string{"Stop", "Shutdown"} {
		t.Run(name, func(t *testing.T) {
			var finished bool
			p := newProgram(func(ctx context.Context) error {
				<-ctx.Done()
				time.Sleep(20 * time.Millisecond) // finish in-flight work, close the db
				finished = true
				return ctx.Err()
			}, nil, 10*time.Second)
			if err := p.Start(nil); err != nil {
				t.Fatal(err)
			}
			var err error
			if name == "Stop" {
				err = p.Stop(nil)
			} else {
				err = p.Shutdown(nil)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !finished {
				t.Fatal("Stop returned before the run function finished")
			}
			if err := p.result(); err != nil {
				t.Fatalf("result = %v, want nil after a clean stop", err)
			}
			if err := p.Stop(nil); err != nil { // Stop then Shutdown: harmless
				t.Fatal(err)
			}
		})
	}
}

type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestRunExitsOnItsOwn(t *testing.T) {
	var buf lockedBuf
	boom := errors.New("config: hesabe.username is required")
	for _, tc := range []struct {
		name string
		ret  error
		want error
	}{{"error", boom, boom}, {"nil", nil, ErrExited}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProgram(func(ctx context.Context) error { return tc.ret }, slog.New(slog.NewTextHandler(&buf, nil)), time.Second)
			exited := make(chan error, 1)
			p.onExit = func(err error) { exited <- err }
			p.Start(nil)
			if err := <-exited; !errors.Is(err, tc.want) {
				t.Fatalf("onExit(%v), want %v", err, tc.want)
			}
			<-p.done
			p.Stop(nil)
			if err := p.result(); !errors.Is(err, tc.want) {
				t.Fatalf("result = %v, want %v", err, tc.want)
			}
		})
	}
	if !strings.Contains(buf.String(), "daemon stopped on its own") {
		t.Errorf("log: %s", buf.String())
	}
}

type fakeLogger struct {
	mu    sync.Mutex
	lines []string
}

func (f *fakeLogger) add(level string, v ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range v {
		f.lines = append(f.lines, level+" "+x.(string))
	}
	return nil
}
func (f *fakeLogger) Error(v ...any) error                 { return f.add("E", v...) }
func (f *fakeLogger) Warning(v ...any) error               { return f.add("W", v...) }
func (f *fakeLogger) Info(v ...any) error                  { return f.add("I", v...) }
func (f *fakeLogger) Errorf(format string, a ...any) error { return f.add("E", format) }
func (f *fakeLogger) Warningf(format string, a ...any) error {
	return f.add("W", format)
}
func (f *fakeLogger) Infof(format string, a ...any) error { return f.add("I", format) }

func TestSystemHandler(t *testing.T) {
	fl := &fakeLogger{}
	var buf lockedBuf
	log := slog.New(teeHandler{slog.NewTextHandler(&buf, nil), &systemHandler{l: fl, level: slog.LevelWarn}})
	log.Info("quiet")
	log.With("terminal", "48515").WithGroup("link").Warn("port gone", "path", "/dev/ttyACM0")
	log.Error("boom", "err", errors.New("x"))
	got := strings.Join(fl.lines, "\n")
	want := "W port gone terminal=48515 link.path=/dev/ttyACM0\nE boom err=x"
	if got != want {
		t.Errorf("event log got\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(buf.String(), "quiet") {
		t.Error("the main handler lost the info record")
	}
}
