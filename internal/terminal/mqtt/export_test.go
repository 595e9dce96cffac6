package mqtt

import (
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
)

// NewTakeoverHook is the embedded broker's takeover wait, for tests that
// run their own mochi server.
func NewTakeoverHook(srv *mochi.Server) mochi.Hook { return &takeoverHook{srv: srv} }

// AddTestHook makes b's next Open add h ahead of the broker's own hooks,
// or after them when last is set.
func AddTestHook(b *Broker, h mochi.Hook, last bool) {
	if last {
		b.testHooksLast = append(b.testHooksLast, h)
		return
	}
	b.testHooks = append(b.testHooks, h)
}

// Drop fails the terminal's connection the way a network error would: the
// client closes it without a DISCONNECT (the broker publishes the Last
// Will) and reconnects at once with the same client id.
func (t *Terminal) Drop() { t.cl.redial(t.cl.current()) }

// Freeze stops the terminal's client from ever reconnecting while leaving
// its open connection as it is: a device that went away while the broker
// still holds its connection (until a newer one with its client id takes
// over).
func (t *Terminal) Freeze() { t.cl.freeze() }

// Drop: as Terminal.Drop, for the bridge's connection.
func (b *Bridge) Drop() { b.cl.redial(b.cl.current()) }

// Freeze: as Terminal.Freeze, for the bridge's connection.
func (b *Bridge) Freeze() { b.cl.freeze() }

func (c *client) freeze() {
	c.mu.Lock()
	c.aborted = true
	c.mu.Unlock()
}

// SetCheckTimes shortens how long a disconnected bridge waits before it
// checks why, and how often it checks again, until the test ends.
func SetCheckTimes(t interface{ Cleanup(func()) }, after, every time.Duration) {
	oldAfter, oldEvery := checkAfter, checkEvery
	checkAfter, checkEvery = after, every
	t.Cleanup(func() { checkAfter, checkEvery = oldAfter, oldEvery })
}
