package daemon

import (
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/terminal"
)

// SetGCTuning shortens the garbage-collector tuner's tick and quiet spell
// for a test, restoring them when it ends.
func SetGCTuning(t interface{ Cleanup(func()) }, tick time.Duration, quietTicks int) {
	oldTick, oldQuiet := gcTick, gcQuietTicks
	gcTick, gcQuietTicks = tick, quietTicks
	t.Cleanup(func() { gcTick, gcQuietTicks = oldTick, oldQuiet })
}

// Gateway is the daemon's Hesabe client, for tests that make a gateway
// call of their own through it.
func (d *Daemon) Gateway() *hesabe.Client { return d.gateway }

// Hub is the daemon's terminal hub, for tests that talk to a terminal
// past the engine (a payment the bridge did not send).
func (d *Daemon) Hub() *terminal.Hub { return d.links.hub }
