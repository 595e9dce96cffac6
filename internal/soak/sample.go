package soak

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Sample is the process's resources at one moment of a soak.
type Sample struct {
	At         time.Duration // since the load started
	Goroutines int
	FDs        int    // open file descriptors (-1 where /proc/self/fd is missing)
	HeapInuse  uint64 // bytes
	RSS        uint64 // bytes (0 where /proc/self/status is missing)
	DBSize     int64  // the checkout database file, bytes
	// What the bridge holds: checkouts not final (submitting, sent, on a
	// terminal) and queued (not yet sent), from the engine's status.
	Active, Queued int
	// Invoices at the simulated gateway and checkouts finished so far.
	Invoices, Finished int
	// GatewayConns: the bridge's connections to the gateway (through the
	// soak's proxy). Each costs this process 6 goroutines and 4
	// descriptors: the bridge's client (2, 1), the proxy (3, 2) and the
	// simulator (1, 1).
	GatewayConns int
}

// Per gateway connection, in this process (see Sample.GatewayConns).
const (
	goroutinesPerGatewayConn = 6
	fdsPerGatewayConn        = 4
)

// own is s less what its gateway connections cost: the part of the
// counts that must stay flat whatever the bridge's connection pool does.
func (s Sample) own() (goroutines, fds int) {
	return s.Goroutines - goroutinesPerGatewayConn*s.GatewayConns, s.FDs - fdsPerGatewayConn*s.GatewayConns
}

// measure fills the process-wide fields of a sample.
func measure(at time.Duration, dbPath string) Sample {
	s := Sample{At: at, Goroutines: runtime.NumGoroutine(), FDs: countFDs(), RSS: rss()}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s.HeapInuse = ms.HeapInuse
	if fi, err := os.Stat(dbPath); err == nil {
		s.DBSize = fi.Size()
	}
	return s
}

// countFDs counts the process's open file descriptors, -1 when it cannot.
func countFDs() int {
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		return -1
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return -1
	}
	return len(names) - 1 // the directory being read
}

// listFDs names what each open descriptor is ("3 -> socket:[1234]"),
// sorted by what; nil where /proc/self/fd is missing.
func listFDs() []string {
	names, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range names {
		target, err := os.Readlink("/proc/self/fd/" + n.Name())
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		out = append(out, target+" <- fd "+n.Name())
	}
	slices.Sort(out)
	return out
}

// rss is VmRSS from /proc/self/status in bytes, 0 when it cannot be read.
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest) // "12345 kB"
			if len(f) == 0 {
				return 0
			}
			kb, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}
