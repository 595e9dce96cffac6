package daemon

import "time"

// SetGCTuning shortens the garbage-collector tuner's tick and quiet spell
// for a test, restoring them when it ends.
func SetGCTuning(t interface{ Cleanup(func()) }, tick time.Duration, quietTicks int) {
	oldTick, oldQuiet := gcTick, gcQuietTicks
	gcTick, gcQuietTicks = tick, quietTicks
	t.Cleanup(func() { gcTick, gcQuietTicks = oldTick, oldQuiet })
}
