package mqtt

import mochi "github.com/mochi-mqtt/server/v2"

// NewTakeoverHook is the embedded broker's takeover wait, for tests that
// run their own mochi server.
func NewTakeoverHook(srv *mochi.Server) mochi.Hook { return &takeoverHook{srv: srv} }
