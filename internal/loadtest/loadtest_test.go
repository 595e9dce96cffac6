package loadtest_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/loadtest"
)

// TestRunSmoke runs a tiny load to keep the command working; it asserts
// counts and errors, never timings.
func TestRunSmoke(t *testing.T) {
	rep, err := loadtest.Run(context.Background(), loadtest.Options{Tills: 4, Duration: 300 * time.Millisecond, Terminals: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Accept.Count == 0 || rep.Accept.Errors != 0 || rep.Direct.Count == 0 || rep.Direct.Errors != 0 {
		t.Fatalf("report: %+v", rep)
	}
	var buf bytes.Buffer
	rep.Print(&buf)
	if !strings.Contains(buf.String(), "durable accept through the till API") {
		t.Fatal(buf.String())
	}
}
