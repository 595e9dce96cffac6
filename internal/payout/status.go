package payout

import (
	"fmt"
	"strings"
)

// PayeeStatus is where a payee is in the provider's review:
// incomplete → pending (review) → normal | rejected | banned.
type PayeeStatus string

// The payee statuses. Their string values are part of the till API.
const (
	// StatusIncomplete: the provider wants more (demand_perfection lists
	// what, e.g. "identitypic").
	StatusIncomplete PayeeStatus = "incomplete"
	// StatusPending: complete, waiting for the provider's review.
	StatusPending PayeeStatus = "pending"
	// StatusNormal: approved; payouts can go to it.
	StatusNormal PayeeStatus = "normal"
	// StatusRejected: the review refused it.
	StatusRejected PayeeStatus = "rejected"
	// StatusBanned: the provider blocked it.
	StatusBanned PayeeStatus = "banned"
	// StatusUnknown: a number we have no mapping for and no statusdesc
	// naming a status; Payee.StatusCode keeps the number.
	StatusUnknown PayeeStatus = "unknown"
)

// PayeeStatuses lists the known statuses in review order.
var PayeeStatuses = []PayeeStatus{StatusIncomplete, StatusPending, StatusNormal, StatusRejected, StatusBanned}

// The provider's status numbers. The reference gives the names and their
// order but not the numbers; its one example answers status 4 together
// with demand_perfection ["identitypic"], so 4 is incomplete. The rest is
// our assumption, one table the client and the simulator share, easy to
// correct once the provider confirms it. A statusdesc naming a status
// wins over the number (see ParsePayeeStatus).
var statusNumbers = map[int]PayeeStatus{
	1: StatusNormal,
	2: StatusPending,
	3: StatusRejected,
	4: StatusIncomplete,
	5: StatusBanned,
}

// Code returns the provider's number for s (0 for unknown).
func (s PayeeStatus) Code() int {
	for n, st := range statusNumbers {
		if st == s {
			return n
		}
	}
	return 0
}

// Known reports whether s is one of PayeeStatuses.
func (s PayeeStatus) Known() bool { return s.Code() != 0 }

// Final reports whether the review is over (normal, rejected or banned).
// Banned can follow normal, but no review step does.
func (s PayeeStatus) Final() bool {
	return s == StatusNormal || s == StatusRejected || s == StatusBanned
}

// ParsePayeeStatus reads a status name (as the till API and the
// simulator's admin API spell it), case-insensitively.
func ParsePayeeStatus(name string) (PayeeStatus, error) {
	s := PayeeStatus(strings.ToLower(strings.TrimSpace(name)))
	if !s.Known() {
		return "", fmt.Errorf("payout: unknown payee status %q (want one of %v)", name, PayeeStatuses)
	}
	return s, nil
}

// statusFromDesc finds a status named in the provider's free-text
// statusdesc ("Pending review", "Incomplete information", "Normal"...).
func statusFromDesc(desc string) (PayeeStatus, bool) {
	d := strings.ToLower(desc)
	for _, m := range []struct {
		words []string
		s     PayeeStatus
	}{
		// Order matters: "not complete" before "complete", "unbanned" is
		// not a word we expect.
		{[]string{"incomplete", "not complete", "perfect", "supplement"}, StatusIncomplete},
		{[]string{"reject", "refuse", "denied"}, StatusRejected},
		{[]string{"ban", "block", "frozen", "disabled"}, StatusBanned},
		{[]string{"pending", "review", "audit"}, StatusPending},
		{[]string{"normal", "active", "approved"}, StatusNormal},
	} {
		for _, w := range m.words {
			if strings.Contains(d, w) {
				return m.s, true
			}
		}
	}
	return "", false
}

// mapStatus turns the provider's number and text into a PayeeStatus:
// the text when it names a status, else the number's mapping, else
// StatusUnknown.
func mapStatus(code int, desc string) PayeeStatus {
	if s, ok := statusFromDesc(desc); ok {
		return s
	}
	if s, ok := statusNumbers[code]; ok {
		return s
	}
	return StatusUnknown
}

// MapStatus is the mapping the client applies to an answer's status and
// statusdesc, exported for the simulator and tools.
func MapStatus(code int, desc string) PayeeStatus { return mapStatus(code, desc) }
