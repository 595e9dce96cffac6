package engine

import "time"

// SetPruneEvery sets how often the prune loop runs, for engines opened
// after it; it returns the old value.
func SetPruneEvery(d time.Duration) time.Duration {
	old := pruneEvery
	pruneEvery = d
	return old
}
