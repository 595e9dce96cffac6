// Package benchutil holds measurements shared by several packages'
// benchmarks, so that the numbers they print beside each other come from
// the same code.
package benchutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// RawFsync is the disk's floor, measured in the same run as a package's
// durable-write benchmarks: one 512-byte write plus fsync per operation,
// over the same 4 MiB of a file (after the first 1,024 the file's size no
// longer changes, so each fsync flushes data alone: the fastest durable
// write the disk does), reported as fsyncs/s.
func RawFsync(b *testing.B) {
	rawFsync(b, func(i int) int64 { return int64(i%1024) * 4096 })
}

// RawAppendFsync is the naive durable write: append 512 bytes to a file
// and fsync it, so each fsync also commits the file's new size (what
// platform-notes.md calls "a raw write+fsync loop"), reported as
// fsyncs/s. Beside RawFsync it shows what the metadata costs.
func RawAppendFsync(b *testing.B) {
	rawFsync(b, func(i int) int64 { return int64(i) * 512 })
}

// rawFsync writes 512 bytes at at(i) and fsyncs, once per operation.
func rawFsync(b *testing.B, at func(i int) int64) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 512)
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(buf, at(i)); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}
