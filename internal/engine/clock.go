package engine

import (
	"sync"

	"github.com/posbridge/posbridge/internal/pos"
	"sync/atomic"
	"time"
)

// clockJumpThreshold: a change of the wall clock against the monotonic
// clock larger than this is a jump (NTP stepping a clock, a cashier
// setting it). NTP's slewing stays far below it between two readings.
const clockJumpThreshold = 2 * time.Second

// clock is the engine's time. The wall clock (Options.Now) stamps what is
// stored and shown; durations inside the process (a deadline's time
// left, back-off, a 429's pause, the cancel grace, the drain pacing, the
// late-payment window) are measured on Go's monotonic clock, which a
// change of the wall clock does not move.
//
// Every reading of the wall clock is compared with the monotonic clock:
// a difference that changed by more than clockJumpThreshold is a jump,
// logged and counted (Status.ClockJumps). shift is the sum of the jumps
// since the engine started: a time stored before any of them is compared
// with the wall clock minus shift, so it keeps its meaning in real time;
// one stored after a jump is remembered on the monotonic clock
// (Engine.track).
type clock struct {
	wall     func() time.Time
	base     time.Time // time.Now() at New: carries the monotonic reading
	baseWall time.Time // the wall clock then
	st       atomic.Pointer[clockState]
	mu       sync.Mutex // serializes the slow path (a jump, a resync)
	onJump   func(size time.Duration, at time.Time)

	jumps    atomic.Int64
	lastJump atomic.Pointer[ClockJump]
}

// clockState is one consistent view of the clock's frame.
type clockState struct {
	skew      time.Duration // wall - (baseWall + monotonic) at the last reading accepted
	shift     time.Duration // sum of the jumps detected
	jumpMono  time.Duration // monotonic time of the last jump (0: none)
	prevShift time.Duration // shift before the last jump
	absSum    time.Duration // sum of the jumps' sizes, either way
	minShift  time.Duration // the lowest shift so far (≤ 0)
}

// ClockJump is a detected change of the wall clock.
type ClockJump struct {
	// Size: how far the wall clock moved (negative: set back).
	Size time.Duration
	// At: the wall clock just after the jump.
	At time.Time
}

func newClock(wall func() time.Time) *clock {
	c := &clock{wall: wall, base: time.Now()}
	c.baseWall = wall().Round(0)
	c.st.Store(&clockState{})
	return c
}

// mono is the monotonic time since the engine was created.
func (c *clock) mono() time.Duration { return time.Since(c.base) }

// read returns the wall clock, the monotonic time and the shift that goes
// with that reading, detecting a jump.
func (c *clock) read() (w time.Time, m time.Duration, shift time.Duration) {
	w = c.wall().Round(0)
	m = c.mono()
	skew := w.Sub(c.baseWall) - m
	st := c.st.Load()
	if d := skew - st.skew; d <= clockJumpThreshold && d >= -clockJumpThreshold {
		return w, m, st.shift
	}
	return w, m, c.jumped(w, m, skew)
}

// jumped is read's slow path: the wall clock moved against the monotonic
// clock since the last reading accepted.
func (c *clock) jumped(w time.Time, m, skew time.Duration) time.Duration {
	c.mu.Lock()
	st := c.st.Load()
	d := skew - st.skew
	switch {
	case d <= clockJumpThreshold && d >= -clockJumpThreshold:
		// Another reading recorded this jump meanwhile.
		c.mu.Unlock()
		return st.shift
	case st.jumpMono != 0 && m < st.jumpMono:
		// Read before the last jump was recorded: the frame before it.
		c.mu.Unlock()
		return st.prevShift
	}
	next := &clockState{skew: skew, shift: st.shift + d, jumpMono: max(m, 1), prevShift: st.shift,
		absSum: st.absSum + max(d, -d), minShift: min(st.minShift, st.shift+d)}
	c.st.Store(next)
	c.jumps.Add(1)
	c.lastJump.Store(&ClockJump{Size: d, At: w})
	c.mu.Unlock()
	if c.onJump != nil {
		c.onJump(d, w)
	}
	return next.shift
}

// resync follows the wall clock's slow drift (NTP slewing) so that it
// never adds up to a jump; the deadline loop calls it every second.
func (c *clock) resync() {
	w, m, _ := c.read()
	skew := w.Sub(c.baseWall) - m
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.st.Load()
	if d := skew - st.skew; d != 0 && d <= clockJumpThreshold && d >= -clockJumpThreshold && m >= st.jumpMono {
		next := *st
		next.skew = skew
		c.st.Store(&next)
	}
}

// state is the clock's current frame.
func (c *clock) state() *clockState { return c.st.Load() }

// tracked is what the engine learned, on the monotonic clock, about a
// checkout's stored times while the wall clock was shifted (after a
// jump): a stored wall-clock time then no longer says when, in real time,
// it falls. Zero: not learned (the stored time is in the frame the engine
// started in).
type tracked struct {
	deadline time.Duration // when its deadline passes
	retry    time.Duration // when its next attempt is due (back-off)
	grace    time.Duration // when its cancel grace began
}

// trackTable holds tracked entries of non-final checkouts. It stays
// empty while the wall clock never jumped, apart from back-offs and
// cancels (a few per terminal), so accepting costs one atomic load.
type trackTable struct {
	mu sync.Mutex
	m  map[string]tracked
}

func (t *trackTable) get(id string) tracked {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[id]
}

func (t *trackTable) update(id string, f func(*tracked)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]tracked{}
	}
	v := t.m[id]
	f(&v)
	t.m[id] = v
}

func (t *trackTable) drop(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, id)
}

// untilStored is how long until the stored wall-clock time at, in real
// time, for a time stored in the frame the engine started in.
func untilStored(at, w time.Time, shift time.Duration) time.Duration {
	return at.Sub(w.Add(-shift))
}

// deadlineLeft is how long c has until its deadline in real time (≤ 0:
// passed). A deadline set after a jump counts on the monotonic clock; one
// set before (or by an earlier run) from the wall clock, less the jumps
// since the engine started.
func (e *Engine) deadlineLeft(c pos.Checkout) time.Duration {
	w, m, shift := e.clk.read()
	if tr := e.track.get(c.ID); tr.deadline != 0 {
		return tr.deadline - m
	}
	return untilStored(c.Deadline, w, shift)
}

// pastDeadline reports whether c's deadline has passed in real time.
func (e *Engine) pastDeadline(c pos.Checkout) bool { return e.deadlineLeft(c) <= 0 }

// graceOver reports whether c's cancel grace (from graceStart) is over
// in real time.
func (e *Engine) graceOver(c pos.Checkout) bool {
	w, m, shift := e.clk.read()
	if tr := e.track.get(c.ID); tr.grace != 0 {
		return m-tr.grace >= e.opts.CancelGrace
	}
	return -untilStored(graceStart(c), w, shift) >= e.opts.CancelGrace
}

// noteGrace records that c's cancel grace begins now (a cancel asked of a
// sent checkout, or a cancel-requested one reaching sent).
func (e *Engine) noteGrace(id string) {
	m := e.clk.mono()
	e.track.update(id, func(t *tracked) { t.grace = m })
}

// noteRetry records when c's next attempt is due, on the monotonic clock.
func (e *Engine) noteRetry(id string, at time.Duration) {
	e.track.update(id, func(t *tracked) { t.retry = at })
}

// ClockJumps is what Status reports of the wall clock's jumps.
func (e *Engine) clockJumps() (int64, *ClockJump) {
	return e.clk.jumps.Load(), e.clk.lastJump.Load()
}
