// Package queuetest makes checkout databases for other packages' tests.
package queuetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/testutil"
)

// DamagedDB writes a database at path holding n checkouts queued on
// terminal (an hour to their deadlines), closes it and garbles the page
// holding checkout number victim (0-based) as a lost write would: bbolt
// can no longer read it. It returns that checkout.
func DamagedDB(t *testing.T, path, terminal string, n, victim int) pos.Checkout {
	t.Helper()
	st, err := queue.Open(path, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var v pos.Checkout
	for i := range n {
		key := fmt.Sprintf("dmg-%05d", i)
		c, _, err := st.Create(context.Background(), pos.Checkout{IdempotencyKey: key, RequestHash: "sha256:" + key,
			TillRef: "till/" + key, TerminalID: terminal, Amount: 1250, Customer: pos.Customer{Name: "Salman"},
			Deadline: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if i == victim {
			v = c
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	testutil.GarblePageHolding(t, path, []byte(v.TillRef))
	return v
}
