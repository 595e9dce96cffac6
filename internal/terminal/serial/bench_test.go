package serial_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// BenchmarkSerialRoundTrip: one data frame and its ACK over a real pty.
// A pty moves bytes at memory speed, so the measured time is what the
// software adds; it is reported against the wire time of the same bytes
// (data frame + ACK frame) at 115200 baud, 8N1.
func BenchmarkSerialRoundTrip(b *testing.B) {
	for _, size := range []int{64, 300, 1024} {
		b.Run(fmt.Sprintf("payload=%d", size), func(b *testing.B) {
			m, path, _ := ptyPair(b)
			p, err := serial.OpenPort(path, 115200)
			if err != nil {
				b.Fatal(err)
			}
			near := serial.NewConn(p, serial.ConnConfig{})
			defer near.Close()
			far := serial.NewConn(m, serial.ConnConfig{OnData: func([]byte) {}})
			defer far.Close()
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte('a' + i%26)
			}
			ctx := context.Background()
			start := time.Now()
			n := 0
			for b.Loop() {
				if err := near.Send(ctx, payload); err != nil {
					b.Fatal(err)
				}
				n++
			}
			per := time.Since(start) / time.Duration(n)
			wire := serial.WireTime(size+2*serial.Overhead, 115200)
			b.ReportMetric(float64(wire.Microseconds()), "wire-µs/op")
			b.ReportMetric(100*float64(per)/float64(wire), "%-of-wire")
		})
	}
}
