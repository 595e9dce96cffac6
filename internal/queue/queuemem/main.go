// Command queuemem fills a checkout queue with many queued checkouts and
// reports the process's memory while the engine's reads walk it: the check
// behind docs/queue.md's "1,000,000 queued under 64 MB RSS".
//
//	go run ./internal/queue/queuemem -n 1000000 -db /tmp/q.db
//
// With -fill=false it reuses an existing file (measure in a fresh process).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

func main() {
	n := flag.Int("n", 100_000, "checkouts to create")
	path := flag.String("db", "queuemem.db", "database file")
	fill := flag.Bool("fill", true, "create -n checkouts first")
	callers := flag.Int("callers", 64, "concurrent creators")
	terminals := flag.Int("terminals", 20, "terminals the checkouts are spread over")
	flag.Parse()
	if err := run(*path, *n, *fill, *callers, *terminals); err != nil {
		log.Fatal(err)
	}
}

func run(path string, n int, fill bool, callers, terminals int) error {
	ctx := context.Background()
	report("start")
	if fill {
		s, err := queue.Open(path, queue.Options{})
		if err != nil {
			return err
		}
		start := time.Now()
		var next atomic.Int64
		var wg sync.WaitGroup
		errc := make(chan error, callers)
		deadline := time.Now().Add(24 * time.Hour)
		for w := 0; w < callers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1)
					if i > int64(n) {
						return
					}
					key := fmt.Sprintf("%08x-till-%d", i*2654435761%(1<<32), i) // spread like random keys
					_, _, err := s.Create(ctx, pos.Checkout{
						IdempotencyKey: key, RequestHash: "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f0",
						TillRef: fmt.Sprintf("lane%d/%d", w, i), TerminalID: fmt.Sprintf("2970845%d", i%int64(terminals)),
						Amount: pos.Money(1000 + i%5000), Customer: pos.Customer{Name: "Salman"},
						Description: "groceries", Deadline: deadline,
					})
					if err != nil {
						errc <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errc)
		if err := <-errc; err != nil {
			return err
		}
		el := time.Since(start)
		fmt.Printf("filled %d in %v (%.0f creates/s)\n", n, el.Round(time.Millisecond), float64(n)/el.Seconds())
		report("after fill")
		if err := s.Close(); err != nil {
			return err
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	fmt.Printf("file %.1f MB (%.0f bytes per checkout)\n", float64(fi.Size())/1e6, float64(fi.Size())/float64(max(n, 1)))

	s, err := queue.Open(path, queue.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	start := time.Now()
	st, err := s.Stats(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("reopened; stats in %v: unsent %d (%s KWD), oldest %v ago\n",
		time.Since(start).Round(time.Microsecond), st.Unsent, st.UnsentAmount, st.OldestUnsentAge.Round(time.Second))
	report("after open+stats")

	// The engine's loop: due heads, deadlines, each terminal's next
	// checkout, the newest pages of the till's list.
	due, err := s.Due(ctx, time.Now(), 100)
	if err != nil {
		return err
	}
	if _, err := s.Expiring(ctx, time.Now().Add(48*time.Hour), 100); err != nil {
		return err
	}
	for t := 0; t < terminals; t++ {
		if _, err := s.Waiting(ctx, fmt.Sprintf("2970845%d", t), "", 1); err != nil {
			return err
		}
	}
	cursor := ""
	for range 20 {
		_, next, err := s.Recent(ctx, cursor, 50)
		if err != nil {
			return err
		}
		cursor = next
	}
	fmt.Printf("due %d heads, %d terminal heads, 20 pages of recent\n", len(due), terminals)
	report("after engine reads")

	// A full walk of one terminal's FIFO, paged (a diagnostics listing).
	start = time.Now()
	walked, after := 0, ""
	for {
		page, err := s.Waiting(ctx, "29708450", after, 500)
		if err != nil {
			return err
		}
		if len(page) == 0 {
			break
		}
		walked += len(page)
		after = page[len(page)-1].ID
	}
	fmt.Printf("walked %d waiting on one terminal in %v\n", walked, time.Since(start).Round(time.Millisecond))
	report("after FIFO walk")
	return nil
}

// report prints the Go heap and the kernel's view of the process: RSS
// split into anonymous memory (heap, stacks) and file pages (bbolt's mmap,
// page cache the kernel may drop).
func report(when string) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fields := map[string]string{}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
	}
	fmt.Printf("%-18s heap %5.1f MB | VmRSS %s (anon %s, file %s) | VmHWM %s\n", when,
		float64(m.HeapAlloc)/1e6, fields["VmRSS"], fields["RssAnon"], fields["RssFile"], fields["VmHWM"])
}
