package gwhttp_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/gwhttp"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{"0", 0},
		{"-1", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		h := http.Header{}
		if c.v != "" {
			h.Set("Retry-After", c.v)
		}
		if got := gwhttp.RetryAfter(h, now); got != c.want {
			t.Errorf("Retry-After %q = %v, want %v", c.v, got, c.want)
		}
	}
}
