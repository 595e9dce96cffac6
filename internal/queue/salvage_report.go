package queue

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// SalvageOptions tune Salvage. The zero value is usable.
type SalvageOptions struct {
	// DryRun reads and reports only: no new file is written.
	DryRun bool
	// LockTimeout is how long to wait for the damaged file's lock (held
	// by a running posbridge). Default 1s.
	LockTimeout time.Duration
	// Now stamps the history entries of checkouts salvage had to change.
	// Default time.Now.
	Now func() time.Time
	// Logger receives nothing but what the store logs when it meets
	// damage while checking the old file. Default: discarded.
	Logger *slog.Logger
}

// SalvageReport is what Salvage copied, changed and could not read.
type SalvageReport struct {
	// Instance is the database's instance id (kept by the new file).
	Instance string `json:"instance"`
	// Schema is the damaged file's schema version.
	Schema uint32 `json:"schema"`
	// HighestSeq is the highest checkout sequence ever issued (from the
	// database and the accept log): new checkouts continue after it.
	HighestSeq uint64 `json:"highest_seq"`
	// Damaged: bbolt met a page it could not read, or the old file failed
	// the store's index check (CheckError says how).
	Damaged    bool   `json:"damaged"`
	CheckError string `json:"check_error,omitempty"`
	// Copied counts the checkouts in the new file by state (after the
	// changes in Resolved).
	Copied map[pos.State]int `json:"copied"`
	// FromLog counts the copied checkouts taken from the accept log.
	FromLog int `json:"from_log"`
	// Absent counts sequence numbers with no record that nothing names:
	// checkouts pruned after their retention.
	Absent int `json:"absent"`
	// Lost are the checkouts that could not be read, in sequence order.
	Lost []LostCheckout `json:"lost"`
	// Resolved are checkouts that were read but broke an invariant, and
	// what salvage did about it.
	Resolved []Resolution `json:"resolved"`
	// UnreadableIndexes name index buckets of the old file that could
	// not be read to the end (they are rebuilt; they only help describe
	// lost checkouts).
	UnreadableIndexes []string       `json:"unreadable_indexes,omitempty"`
	Requests          RequestSalvage `json:"requests"`
	Elapsed           time.Duration  `json:"elapsed_ns"`
}

// LostCheckout is a checkout whose record could not be read. Look it up
// by its invoice number in the Hesabe merchant panel. The other fields
// are what the indexes or the accept log still tell ("" or 0: unknown).
type LostCheckout struct {
	Seq            uint64    `json:"seq"`
	ID             string    `json:"id"`
	InvoiceNumber  string    `json:"invoice_number"`
	Why            string    `json:"why"`
	State          pos.State `json:"state,omitempty"` // last state an index knew
	IdempotencyKey string    `json:"idempotency_key,omitempty"`
	TerminalID     string    `json:"terminal_id,omitempty"`
	TillRef        string    `json:"till_ref,omitempty"`
	Amount         pos.Money `json:"amount,omitempty"`
}

// Resolution is a checkout salvage copied but had to change.
type Resolution struct {
	Seq           uint64    `json:"seq"`
	ID            string    `json:"id"`
	InvoiceNumber string    `json:"invoice_number"`
	From          pos.State `json:"from"`
	To            pos.State `json:"to"`
	Why           string    `json:"why"`
}

// RequestSalvage is the request outbox's part of the report.
type RequestSalvage struct {
	Copied   int           `json:"copied"`
	Absent   int           `json:"absent"`
	Lost     []LostRequest `json:"lost"`
	Resolved []string      `json:"resolved"`
}

// LostRequest is a request whose record could not be read.
type LostRequest struct {
	Seq uint64 `json:"seq"`
	ID  string `json:"id"`
	Why string `json:"why"`
}

// Complete reports that every record was copied unchanged.
func (r *SalvageReport) Complete() bool {
	return len(r.Lost) == 0 && len(r.Resolved) == 0 && len(r.Requests.Lost) == 0 && len(r.Requests.Resolved) == 0
}

// WriteText writes the report for the technician.
func (r *SalvageReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "database instance %s (schema %d), checkouts #1 to #%d issued\n", r.Instance, r.Schema, r.HighestSeq)
	switch {
	case r.Damaged:
		fmt.Fprintf(&b, "the old file is damaged")
		if r.CheckError != "" {
			fmt.Fprintf(&b, ": %s", r.CheckError)
		}
		b.WriteString("\n")
	default:
		b.WriteString("the old file reads whole and passes its check\n")
	}
	total := 0
	for _, n := range r.Copied {
		total += n
	}
	fmt.Fprintf(&b, "copied %d checkouts:", total)
	for _, s := range stateSlots {
		if n := r.Copied[s]; n > 0 {
			fmt.Fprintf(&b, " %s %d", s, n)
		}
	}
	fmt.Fprintf(&b, " (%d of them from the accept log); %d pruned before\n", r.FromLog, r.Absent)
	fmt.Fprintf(&b, "copied %d requests; %d pruned before\n", r.Requests.Copied, r.Requests.Absent)
	for _, name := range r.UnreadableIndexes {
		fmt.Fprintf(&b, "index %s of the old file could not be read to its end (rebuilt from the records)\n", name)
	}
	if len(r.Lost) > 0 {
		fmt.Fprintf(&b, "\nLOST: %d checkouts could not be read. Look each invoice number up in the Hesabe merchant panel:\n", len(r.Lost))
		for _, l := range r.Lost {
			fmt.Fprintf(&b, "  #%d %s invoice %s: %s", l.Seq, l.ID, l.InvoiceNumber, l.Why)
			var known []string
			if l.State != "" {
				known = append(known, "last known state "+string(l.State))
			}
			if l.TerminalID != "" {
				known = append(known, "terminal "+l.TerminalID)
			}
			if l.Amount != 0 {
				known = append(known, fmt.Sprintf("amount %d fils", l.Amount))
			}
			if l.TillRef != "" {
				known = append(known, "till ref "+l.TillRef)
			}
			if l.IdempotencyKey != "" {
				known = append(known, "idempotency key "+l.IdempotencyKey)
			}
			if len(known) > 0 {
				fmt.Fprintf(&b, " (%s)", strings.Join(known, ", "))
			}
			b.WriteString("\n")
		}
	}
	if len(r.Resolved) > 0 {
		fmt.Fprintf(&b, "\nCHANGED: %d checkouts broke an invariant and were changed. Look each invoice number up in the Hesabe merchant panel:\n", len(r.Resolved))
		for _, x := range r.Resolved {
			fmt.Fprintf(&b, "  #%d %s invoice %s: %s → %s: %s\n", x.Seq, x.ID, x.InvoiceNumber, x.From, x.To, x.Why)
		}
	}
	if len(r.Requests.Lost) > 0 {
		fmt.Fprintf(&b, "\nLOST: %d requests could not be read:\n", len(r.Requests.Lost))
		for _, l := range r.Requests.Lost {
			fmt.Fprintf(&b, "  #%d %s: %s\n", l.Seq, l.ID, l.Why)
		}
	}
	for _, x := range r.Requests.Resolved {
		fmt.Fprintf(&b, "changed request: %s\n", x)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
