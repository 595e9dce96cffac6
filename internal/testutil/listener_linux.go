//go:build linux

package testutil

import (
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"
)

// BreakListener makes the listening TCP socket of this process that is
// bound to addr fail as a dying socket does: it shuts the socket down
// (shutdown(2)) under its owner, whose next accept fails with EINVAL, a
// non-temporary error that ends http.Server.Serve. The socket is found
// among the process's descriptors by its address, so the code under test
// needs no hook. It fails the test when no such socket is found.
func BreakListener(t testing.TB, addr string) {
	t.Helper()
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("BreakListener(%q): %v", addr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		t.Fatalf("BreakListener(%q): %v", addr, err)
	}
	ip := net.ParseIP(host).To4()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("BreakListener: %v", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := syscall.Getsockname(fd)
		if err != nil {
			continue // not a socket, or closed since the listing
		}
		in4, ok := sa.(*syscall.SockaddrInet4)
		if !ok || in4.Port != port || ip == nil || !net.IP(in4.Addr[:]).Equal(ip) {
			continue
		}
		if listening, err := syscall.GetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_ACCEPTCONN); err != nil || listening != 1 {
			continue // a connection from or to that port, not the listener
		}
		if err := syscall.Shutdown(fd, syscall.SHUT_RDWR); err != nil {
			t.Fatalf("BreakListener(%q): shutdown: %v", addr, err)
		}
		return
	}
	t.Fatalf("BreakListener: no listening socket on %s in this process", addr)
}
