package diag_test

import (
	"strings"
	"testing"
	"time"
)

// TestOldestQueuedWithoutID: the queue source gives the oldest queued
// checkout's age but not always its ID (the daemon's store keeps only
// the time). The page used to say "Oldest queued: none" beside "Queued: 1"
// and /readyz "stuck: oldest queued checkout  waits 2m15s" (an empty ID),
// so the one figure that explains a stuck queue was missing, and nothing
// said where to look next.
func TestOldestQueuedWithoutID(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := healthy(now)
	f.queue.Queued, f.queue.OldestQueued = 1, now.Add(-135*time.Second)
	s, _, _ := start(t, f, "")

	code, body := get(t, s.URL()+"/readyz", "")
	if code != 503 || !strings.Contains(body, "FAIL queue: stuck: oldest queued checkout waits 2m15s while the gateway is online") {
		t.Errorf("readyz: %d %s", code, body)
	}
	if strings.Contains(body, "checkout  ") {
		t.Errorf("readyz names an empty checkout ID: %s", body)
	}
	if !strings.Contains(body, "posbridge checkouts") {
		t.Errorf("readyz does not say where to find the checkout holding the queue: %s", body)
	}

	_, page := get(t, s.URL()+"/", "")
	if !strings.Contains(page, `<td id="q-oldest">waiting since 2m15s ago</td>`) {
		i := strings.Index(page, `id="q-oldest"`)
		t.Errorf("page's oldest queued: %s", page[i:min(len(page), i+120)])
	}

	// With an ID, both name it.
	f.queue.OldestID = "co_7"
	if _, body = get(t, s.URL()+"/readyz", ""); !strings.Contains(body, "stuck: oldest queued checkout co_7 waits 2m15s") {
		t.Errorf("readyz with an ID: %s", body)
	}
	if _, page = get(t, s.URL()+"/", ""); !strings.Contains(page, `<td id="q-oldest">co_7, waiting since 2m15s ago</td>`) {
		t.Error("page with an ID does not name it")
	}

	// Nothing queued: none.
	f.queue.Queued, f.queue.OldestQueued, f.queue.OldestID = 0, time.Time{}, ""
	if _, page = get(t, s.URL()+"/", ""); !strings.Contains(page, `<td id="q-oldest"><span class="muted">none</span></td>`) {
		t.Error("page with nothing queued")
	}
}
