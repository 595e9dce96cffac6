package diag

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// readRequests reads the request outbox with its gateways sorted by name,
// so the page, the JSON and the summary list them in a stable order.
func (s *Server) readRequests(ctx context.Context) (RequestsHealth, error) {
	h, err := s.src.Requests(ctx)
	if err != nil {
		return RequestsHealth{}, err
	}
	h.Gateways = slices.Clone(h.Gateways)
	if h.Gateways == nil {
		h.Gateways = []RequestGatewayHealth{}
	}
	slices.SortFunc(h.Gateways, func(a, b RequestGatewayHealth) int { return cmp.Compare(a.Name, b.Name) })
	return h, nil
}

// requestsSummary is the outbox in one line a technician reads at a
// glance: "3 waiting; hitpay DOWN since 12:03:10 (connection refused),
// next try 12:04:00; hesabe OK". Gateways that are down come first.
func requestsSummary(now time.Time, h RequestsHealth) string {
	parts := []string{"nothing waiting"}
	if h.Pending > 0 {
		parts[0] = fmt.Sprintf("%d waiting", h.Pending)
	}
	for _, g := range h.Gateways {
		if !g.Down {
			continue
		}
		p := g.Name + " DOWN"
		if !g.DownSince.IsZero() {
			p += " since " + clock(now, g.DownSince)
		}
		if g.LastError != "" {
			p += " (" + g.LastError + ")"
		}
		parts = append(parts, p+", next try "+nextAt(now, g.NextRetry))
	}
	for _, g := range h.Gateways {
		switch {
		case g.Down:
		case g.LastOK.IsZero():
			parts = append(parts, g.Name+" not used since start")
		default:
			parts = append(parts, g.Name+" OK")
		}
	}
	return strings.Join(parts, "; ")
}

// clock is a time of day, with the date when it is not today's.
func clock(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	t = t.In(now.Location())
	if y, m, d := t.Date(); now.Year() != y || now.Month() != m || now.Day() != d {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("15:04:05")
}

// nextAt is when something is due: "now" when it is (or nothing says
// otherwise), else its time of day and how far off it is.
func nextAt(now, t time.Time) string {
	if t.IsZero() || !t.After(now) {
		return "now"
	}
	return clock(now, t)
}

// nextIn is nextAt with how long until then, for the table.
func nextIn(now, t time.Time) string {
	if t.IsZero() || !t.After(now) {
		return "now"
	}
	return clock(now, t) + " (in " + t.Sub(now).Round(time.Second).String() + ")"
}
