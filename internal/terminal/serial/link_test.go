package serial_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// linkHarness runs a Link and records its ups and downs.
type linkHarness struct {
	link *serial.Link
	ups  chan struct{}
	down chan error
	got  *collector
	stop func()
}

func startLink(t *testing.T, cfg serial.LinkConfig) *linkHarness {
	t.Helper()
	h := &linkHarness{ups: make(chan struct{}, 8), down: make(chan error, 8), got: newCollector()}
	cfg.Conn.OnData = h.got.onData
	cfg.OnUp = func(*serial.Conn) { h.ups <- struct{}{} }
	cfg.OnDown = func(err error) { h.down <- err }
	if cfg.ReopenDelay == 0 {
		cfg.ReopenDelay = 50 * time.Millisecond
	}
	h.link = serial.NewLink(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); h.link.Run(ctx) }()
	var once sync.Once
	h.stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(h.stop)
	return h
}

func (h *linkHarness) waitUp(t *testing.T) {
	t.Helper()
	select {
	case <-h.ups:
	case <-time.After(15 * time.Second):
		t.Fatalf("link did not come up; stats %+v", h.link.Stats())
	}
}

func (h *linkHarness) waitDown(t *testing.T) {
	t.Helper()
	select {
	case <-h.down:
	case <-time.After(15 * time.Second):
		t.Fatal("link did not notice the far end vanished")
	}
}

// roundTrip checks both directions over the link and a far-end Conn.
func roundTrip(t *testing.T, h *linkHarness, far *serial.Conn, farGot *collector, tag string) {
	t.Helper()
	ctx := ctxT(t)
	// The link may still be settling; Send reports ErrNotConnected until
	// the port is open, so retry that alone.
	for {
		err := h.link.Send(ctx, []byte("to-terminal "+tag))
		if err == nil {
			break
		}
		if !errors.Is(err, serial.ErrNotConnected) {
			t.Fatalf("link send: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := farGot.next(t); got != "to-terminal "+tag {
		t.Fatalf("far end got %q", got)
	}
	if err := far.Send(ctx, []byte("to-bridge "+tag)); err != nil {
		t.Fatalf("far send: %v", err)
	}
	if got := h.got.next(t); got != "to-bridge "+tag {
		t.Fatalf("link got %q", got)
	}
}

// TestLinkUnplugReplug: the far end vanishes in the middle of a frame (its
// pty is closed, as when a USB cable is pulled) and a new device appears
// under the same stable name (a udev /dev/serial/by-id symlink). The link
// notices, reopens, and works again without duplicating anything.
func TestLinkUnplugReplug(t *testing.T) {
	dir := t.TempDir()
	stable := filepath.Join(dir, "usb-PAX_A99_1234-if00")
	m1, tty1, close1 := ptyPair(t)
	if err := os.Symlink(tty1, stable); err != nil {
		t.Fatal(err)
	}
	h := startLink(t, serial.LinkConfig{Port: serial.PortSpec{Path: stable}})
	h.waitUp(t)
	far1Got := newCollector()
	far1 := serial.NewConn(m1, serial.ConnConfig{OnData: far1Got.onData})
	roundTrip(t, h, far1, far1Got, "before")

	// Half a frame, then the device is gone.
	half := serial.AppendFrame(nil, serial.TypeData, 9, []byte("a result that never finishes"))
	if _, err := m1.Write(half[:len(half)/2]); err != nil {
		t.Fatal(err)
	}
	far1.Close()
	close1()
	os.Remove(stable)
	h.waitDown(t)

	m2, tty2, _ := ptyPair(t)
	if err := os.Symlink(tty2, stable); err != nil {
		t.Fatal(err)
	}
	h.waitUp(t)
	far2Got := newCollector()
	far2 := serial.NewConn(m2, serial.ConnConfig{OnData: far2Got.onData})
	defer far2.Close()
	roundTrip(t, h, far2, far2Got, "after")
	h.got.none(t)
	if s := h.link.Stats(); s.Reconnects != 1 || !s.Connected || s.Path != stable {
		t.Errorf("stats = %+v, want 1 reconnect, connected on %s", s, stable)
	}
}

func TestSelectPort(t *testing.T) {
	ports := []serial.PortInfo{
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "2FB8", PID: "2101", SerialNumber: "A99-111"},
		{Name: "/dev/ttyACM1", IsUSB: true, VID: "2fb8", PID: "2101", SerialNumber: "A99-222"},
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "0403", PID: "6001", SerialNumber: "FT1"},
	}
	for _, tc := range []struct {
		name string
		id   serial.USBID
		want string
		err  error
	}{
		{"BySerial", serial.USBID{VID: "2fb8", PID: "2101", SerialNumber: "A99-222"}, "/dev/ttyACM1", nil},
		{"HexCaseIgnored", serial.USBID{VID: "2FB8", PID: "2101", SerialNumber: "A99-111"}, "/dev/ttyACM0", nil},
		{"UniqueVIDPID", serial.USBID{VID: "0403", PID: "6001"}, "/dev/ttyUSB0", nil},
		{"ErrAmbiguous", serial.USBID{VID: "2fb8", PID: "2101"}, "", serial.ErrPortAmbiguous},
		{"ErrNotFound", serial.USBID{VID: "2fb8", PID: "2101", SerialNumber: "A99-333"}, "", serial.ErrPortNotFound},
		{"ErrNotUSB", serial.USBID{VID: "0000", PID: "0000"}, "", serial.ErrPortNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := serial.SelectPort(ports, tc.id)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Fatalf("SelectPort = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
			if err != nil && errors.Is(err, serial.ErrPortNotFound) && !strings.Contains(err.Error(), "ttyACM0") {
				t.Errorf("error should list what is present: %v", err)
			}
		})
	}
	if _, err := serial.SelectPort(nil, serial.USBID{VID: "2fb8", PID: "2101"}); !errors.Is(err, serial.ErrPortNotFound) {
		t.Errorf("empty list: %v", err)
	}
}

// TestLinkFollowsUSBSerial: the terminal is pinned by VID/PID/serial. It is
// unplugged and comes back under another name (ttyACM0 → ttyACM1, or a new
// COM number); the link finds it by serial number through the enumerator
// seam (pseudo-terminals never appear in the real enumerator).
func TestLinkFollowsUSBSerial(t *testing.T) {
	m1, tty1, close1 := ptyPair(t)
	var mu sync.Mutex
	list := []serial.PortInfo{
		{Name: "/dev/ttyS0"},
		{Name: tty1, IsUSB: true, VID: "2FB8", PID: "2101", SerialNumber: "A99-111"},
		{Name: "/dev/null-other", IsUSB: true, VID: "2FB8", PID: "2101", SerialNumber: "A99-999"},
	}
	var opened []string
	h := startLink(t, serial.LinkConfig{
		Port: serial.PortSpec{USB: &serial.USBID{VID: "2fb8", PID: "2101", SerialNumber: "A99-111"}},
		ListPorts: func() ([]serial.PortInfo, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]serial.PortInfo(nil), list...), nil
		},
		OpenPort: func(path string, baud int) (io.ReadWriteCloser, error) {
			mu.Lock()
			opened = append(opened, path)
			mu.Unlock()
			return serial.OpenPort(path, baud)
		},
	})
	h.waitUp(t)
	farGot := newCollector()
	far := serial.NewConn(m1, serial.ConnConfig{OnData: farGot.onData})
	roundTrip(t, h, far, farGot, "first")

	far.Close()
	close1()
	mu.Lock()
	list = list[:1] // unplugged: gone from the list
	mu.Unlock()
	h.waitDown(t)

	m2, tty2, _ := ptyPair(t)
	mu.Lock()
	list = append(list,
		serial.PortInfo{Name: "/dev/null-other", IsUSB: true, VID: "2fb8", PID: "2101", SerialNumber: "A99-999"},
		serial.PortInfo{Name: tty2, IsUSB: true, VID: "2fb8", PID: "2101", SerialNumber: "A99-111"})
	mu.Unlock()
	h.waitUp(t)
	far2Got := newCollector()
	far2 := serial.NewConn(m2, serial.ConnConfig{OnData: far2Got.onData})
	defer far2.Close()
	roundTrip(t, h, far2, far2Got, "renumbered")

	h.stop()
	mu.Lock()
	defer mu.Unlock()
	if len(opened) != 2 || opened[0] != tty1 || opened[1] != tty2 {
		t.Errorf("opened %v, want [%s %s]", opened, tty1, tty2)
	}
	if s := h.link.Stats(); s.Path != tty2 {
		t.Errorf("path = %s", s.Path)
	}
}
