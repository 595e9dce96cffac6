// Package engine drives every checkout from acceptance to its result: it
// stores what the till asks for (durably, before answering), submits due
// checkouts to Hesabe one terminal at a time, reconciles any submission
// whose outcome is unknown before sending again, follows each invoice to
// its result (terminal events first, gateway polling as the source of
// truth), enforces deadlines and offline limits, and tells subscribers of
// every committed change.
//
// The one rule that keeps merchants from being charged twice: a checkout
// is moved to submitting (durably) before its invoice is sent, and a
// checkout that may have reached Hesabe before (any earlier attempt, or one
// found in submitting at start-up) is looked up by its invoice_number
// before it is sent again. Hesabe has no idempotency key; this look-up is
// the only protection. See docs/engine.md.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
)

// Gateway is what the engine needs from Hesabe; *hesabe.Client has it.
//
// CreatePOSInvoice is not idempotent. Errors carry a pos.ErrorClass
// (pos.ClassOf): retryable (not applied), permanent (refused), ambiguous
// (may have been applied). FindPOSInvoice and GetPOSInvoice return an error
// wrapping hesabe.ErrNotFound when there is no such invoice.
type Gateway interface {
	CreatePOSInvoice(ctx context.Context, req hesabe.POSInvoiceRequest) (*hesabe.POSInvoice, error)
	FindPOSInvoice(ctx context.Context, invoiceNumber string) (*hesabe.POSInvoice, error)
	GetPOSInvoice(ctx context.Context, id int64) (*hesabe.POSInvoice, error)
}

var _ Gateway = (*hesabe.Client)(nil)

// TerminalLink is the optional local link to the terminals. Hesabe pushes
// each invoice to its terminal itself; PushInvoice is a faster local path
// and CancelInvoice the only way to take an invoice off a terminal's
// screen. Both are best effort: errors are logged, never fatal. Results
// come back through Engine.HandleTerminalEvent (or OnTerminalEvent).
//
// PushInvoice returns an error wrapping ErrTerminalBusy when the terminal
// refused the invoice because another payment is on its screen: the
// engine offers it again when the terminal reports it is free (a
// TerminalStatus event with Busy false, or TerminalConnected) or after
// BusyRetry, until the checkout leaves sent.
type TerminalLink interface {
	PushInvoice(ctx context.Context, c pos.Checkout) error
	CancelInvoice(ctx context.Context, c pos.Checkout) error
}

// ErrTerminalBusy: the terminal refused an invoice because another
// payment is on its screen (TerminalLink.PushInvoice wraps it).
var ErrTerminalBusy = pos.ErrTerminalBusy

// OfflineLimits bound what the engine accepts while the gateway is
// unreachable (like Stripe Terminal's offline mode). Zero means no limit.
type OfflineLimits struct {
	// MaxCount: at most this many unsent checkouts stored.
	MaxCount int
	// MaxAmount: the unsent checkouts' total may not exceed this.
	MaxAmount pos.Money
	// MaxSingle: no single checkout above this while offline.
	MaxSingle pos.Money
}

// Options configure an Engine. DefaultOptions gives the defaults; New
// fills in any zero duration.
type Options struct {
	// DefaultDeadline is a checkout's deadline when the till gives none.
	DefaultDeadline time.Duration
	// MaxDeadline is the longest deadline a till may ask for.
	MaxDeadline time.Duration
	// Terminals are the known terminal ids; a checkout for another one is
	// refused. Empty: any terminal id.
	Terminals []string
	// MaxAmount refuses any single checkout above it, online or not (0: none).
	MaxAmount pos.Money
	// Offline limits apply while the gateway is unreachable.
	Offline OfflineLimits
	// BackoffInitial and BackoffMax bound the retry delay of one checkout
	// after a retryable failure (doubling, with jitter).
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// PollInterval is how often sent and on_terminal checkouts (and
	// expired ones still watched for a late payment) are looked up at the
	// gateway.
	PollInterval time.Duration
	// ProbeInterval is how often the gateway is probed while offline.
	ProbeInterval time.Duration
	// IdleProbe: while online, probe when no gateway call succeeded for
	// this long, so Online stays true to the facts.
	IdleProbe time.Duration
	// DrainRate caps submissions per second (0: unlimited). A 429 from the
	// gateway, answering any call, pauses every call to it (submissions,
	// polls, probes, Hesabe's requests) for its Retry-After (without one:
	// 1 s, doubling with each 429 in a row up to a minute) whatever the
	// rate.
	DrainRate float64
	// Workers bounds concurrent submissions (each to a different
	// terminal), and separately the concurrent status polls, the
	// concurrent late-payment polls and the concurrent look-ups of
	// checkouts found in submitting at Open.
	Workers int
	// CancelGrace is how long a sent checkout waits for the terminal or
	// gateway to confirm a cancel (asked by the till or by the deadline)
	// before it is marked expired.
	CancelGrace time.Duration
	// LateWindow is how long an expired checkout whose invoice reached the
	// gateway is still polled for a late payment.
	LateWindow time.Duration
	// CallTimeout bounds each gateway call.
	CallTimeout time.Duration
	// BusyRetry is how often an invoice the terminal refused as busy is
	// offered again when the terminal does not report that it is free.
	BusyRetry time.Duration
	// ResultTimeout bounds how long HandleTerminalEvent waits for a
	// terminal result to be stored; past it the link is told to leave the
	// result unacknowledged (the terminal sends it again).
	ResultTimeout time.Duration
	// CustomerName is sent to Hesabe when the till gives no customer name
	// (Hesabe requires one).
	CustomerName string
	// Requests are the other request kinds the bridge delivers (customers,
	// installment batches, payees), each with its rules (requests.go).
	// A kind without a handler is refused.
	Requests map[pos.RequestKind]RequestHandler
	// MaxPendingRequests bounds how many of those wait (queued or being
	// sent) at once; beyond it SubmitRequest answers pos.ELimit. 0: 10,000.
	MaxPendingRequests int
	// Terminal is the optional local terminal link (nil: results only from
	// gateway polling).
	Terminal TerminalLink
	Logger   *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		DefaultDeadline: 5 * time.Minute,
		MaxDeadline:     30 * time.Minute,
		BackoffInitial:  time.Second,
		BackoffMax:      60 * time.Second,
		PollInterval:    3 * time.Second,
		ProbeInterval:   5 * time.Second,
		IdleProbe:       30 * time.Second,
		Workers:         16,
		CancelGrace:     2 * time.Minute,
		LateWindow:      30 * time.Minute,
		CallTimeout:     20 * time.Second,
		ResultTimeout:   5 * time.Second,
		BusyRetry:       5 * time.Second,
		CustomerName:    "Customer",
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&o.DefaultDeadline, d.DefaultDeadline)
	set(&o.MaxDeadline, d.MaxDeadline)
	set(&o.BackoffInitial, d.BackoffInitial)
	set(&o.BackoffMax, d.BackoffMax)
	set(&o.PollInterval, d.PollInterval)
	set(&o.ProbeInterval, d.ProbeInterval)
	set(&o.IdleProbe, d.IdleProbe)
	set(&o.CancelGrace, d.CancelGrace)
	set(&o.LateWindow, d.LateWindow)
	set(&o.CallTimeout, d.CallTimeout)
	set(&o.ResultTimeout, d.ResultTimeout)
	set(&o.BusyRetry, d.BusyRetry)
	if o.MaxDeadline < o.DefaultDeadline {
		o.MaxDeadline = o.DefaultDeadline
	}
	if o.BackoffMax < o.BackoffInitial {
		o.BackoffMax = o.BackoffInitial
	}
	if o.Workers <= 0 {
		o.Workers = d.Workers
	}
	if o.CustomerName == "" {
		o.CustomerName = d.CustomerName
	}
	if o.MaxPendingRequests <= 0 {
		o.MaxPendingRequests = 10000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Engine is the checkout engine. Create it with New, start it with Open,
// stop it with Close. Its methods are safe for concurrent use.
type Engine struct {
	store *queue.Store
	gw    Gateway
	link  TerminalLink
	opts  Options
	log   *slog.Logger
	terms map[string]bool

	ctx    context.Context // the loops' context, canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	opened atomic.Bool
	closed atomic.Bool
	once   sync.Once

	wake   chan struct{}                 // new work for the dispatcher
	events [eventShards]chan queuedEvent // by terminal

	health health
	clk    *clock     // wall clock for stamps, monotonic for durations (clock.go)
	track  trackTable // stored times learned on the monotonic clock after a jump
	rl     rateLimit
	notify notifier
	reqs   requestState

	mu        sync.Mutex
	inflight  map[string]bool          // terminals with a submission in this process
	pushing   map[string]int           // terminals with a push under way (pushOnTerminal)
	freed     map[string]chan struct{} // closed when the terminal reports it is free (a busy push waits on it)
	polling   map[string]bool          // checkouts whose status poll is under way
	canceling map[string]bool          // checkouts whose terminal is being asked to cancel
	late      map[string]lateWatch     // expired checkouts still polled, by id
	recover   bool                     // the link came back: ignore back-off once

	offlineMu sync.Mutex // serializes accepts while offline (exact limits)

	latePaid      atomic.Int64
	damagedSaid   atomic.Bool // the log said the store's file is damaged
	droppedEvents atomic.Int64
	lastCounts    atomic.Pointer[storeCounts] // the last counters read, for Status while the store cannot be read
	pauseUntil    atomic.Int64                // monotonic nanos (clock.mono): a 429 pauses every call to Hesabe
}

// New returns an engine over store (which the caller opens and closes) and
// gw. Call Open to start it.
func New(store *queue.Store, gw Gateway, opts Options) *Engine {
	opts = opts.withDefaults()
	e := &Engine{
		store:     store,
		gw:        gw,
		link:      opts.Terminal,
		opts:      opts,
		log:       opts.Logger,
		wake:      make(chan struct{}, 1),
		inflight:  map[string]bool{},
		pushing:   map[string]int{},
		freed:     map[string]chan struct{}{},
		polling:   map[string]bool{},
		canceling: map[string]bool{},
		late:      map[string]lateWatch{},
		reqs: requestState{wake: make(chan struct{}, 1), inflight: map[string]bool{},
			busy: map[string]bool{}, gates: map[string]*gatewayGate{}},
	}
	for i := range e.events {
		e.events[i] = make(chan queuedEvent, 256)
	}
	if len(opts.Terminals) > 0 {
		e.terms = make(map[string]bool, len(opts.Terminals))
		for _, t := range opts.Terminals {
			e.terms[t] = true
		}
	}
	e.clk = newClock(opts.Now)
	e.clk.onJump = func(size time.Duration, at time.Time) {
		e.log.Warn("system clock jumped; deadlines, back-off and polling keep counting real time",
			"by", size.Round(time.Millisecond).String(), "now", at)
		e.kick() // the dispatcher's due times are read on the new clock
	}
	e.health.init(e)
	e.notify.init()
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Open reloads the expired invoices still watched for a late payment,
// starts the loops, and starts reconciling the checkouts found in
// submitting (their outcome is unknown after a crash) in the background,
// at most Workers look-ups at a time: it does not wait for the gateway,
// so a gateway that hangs does not hold up the daemon's start. Until its
// look-up settles, such a checkout's terminal is claimed, so nothing
// else is submitted on it and the checkout is not sent again; a failed
// look-up sends it back to queued, to be looked up again before any
// resend. A checkout found sent (at the gateway, not yet acknowledged by
// its terminal) is pushed to its terminal again, and a cancel that was
// asked is asked again: what the link was delivering died with the last
// run.
func (e *Engine) Open(ctx context.Context) error {
	if e.closed.Load() {
		return errors.New("engine: closed")
	}
	if !e.opened.CompareAndSwap(false, true) {
		return errors.New("engine: already open")
	}
	active, err := e.store.ActiveAll(ctx)
	if err != nil {
		return fmt.Errorf("engine: open: read active checkouts: %w", err)
	}
	var reconcile, recancel, repush []pos.Checkout
	for _, c := range active {
		switch {
		case c.State == pos.StateSubmitting:
			// Claimed before any loop runs: the dispatcher submits nothing
			// on this terminal and the poller leaves the checkout alone
			// until reconcileAll releases it. (A second one on the same
			// terminal, which the store does not make, would be left to
			// the poller's orphan path.)
			if e.claim(c.TerminalID) {
				reconcile = append(reconcile, c)
			}
		case c.CancelRequested:
			// The cancel was stored, but the terminal may never have
			// heard of it: the link is asked after the commit, and what
			// the link was still delivering died with the last run.
			recancel = append(recancel, c)
		case c.State == pos.StateSent:
			// Its push died with the last run (the link's outbox is in
			// memory): a terminal that had not taken the invoice yet is
			// offered it again (it acknowledges a repeat without showing
			// it twice).
			repush = append(repush, c)
		}
	}
	if err := e.loadLate(ctx); err != nil {
		return fmt.Errorf("engine: open: %w", err)
	}
	// Status's counters start from here, so it has some to show should
	// the store become unreadable (a full disk) before it is next read.
	if s, err := e.store.Stats(ctx); err == nil {
		e.lastCounts.Store(&storeCounts{stats: s, at: e.now()})
	}
	if err := e.reconcileRequests(ctx); err != nil {
		return fmt.Errorf("engine: open: %w", err)
	}
	loops := []func(){e.dispatchLoop, e.pollLoop, e.lateLoop, e.deadlineLoop, e.probeLoop, e.pruneLoop, e.requestLoop}
	for _, ch := range e.events {
		loops = append(loops, func() { e.eventLoop(ch) })
	}
	for _, loop := range loops {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			loop()
		}()
	}
	e.reconcileAll(reconcile)
	for _, c := range recancel {
		e.cancelOnTerminal(c)
	}
	for _, c := range repush {
		e.pushOnTerminal(c)
	}
	e.kick()
	return nil
}

// reconcileAll looks up the checkouts Open found in submitting, whose
// terminals it claimed, at most Workers at a time, each in its own
// goroutine (a hung look-up holds up only its own checkout), and
// releases each terminal when its checkout's look-up has settled.
func (e *Engine) reconcileAll(list []pos.Checkout) {
	sem := make(chan struct{}, e.opts.Workers)
	for _, c := range list {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer func() {
				e.release(c.TerminalID)
				e.kick()
			}()
			select {
			case sem <- struct{}{}:
			case <-e.ctx.Done():
				return // stays submitting: reconciled at the next Open
			}
			defer func() { <-sem }()
			e.reconcileStartup(e.ctx, c)
		}()
	}
}

// Close stops accepting (Create returns pos.EUnavailable), stops the loops
// and waits for them until ctx ends. Gateway calls in flight are canceled:
// a checkout left in submitting is reconciled at the next Open. Close does
// not close the store.
func (e *Engine) Close(ctx context.Context) error {
	var err error
	e.once.Do(func() {
		e.mu.Lock() // see cancelOnTerminal
		e.closed.Store(true)
		e.mu.Unlock()
		e.cancel()
		done := make(chan struct{})
		go func() {
			e.wg.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("engine: close: loops still running: %w", ctx.Err())
		}
		e.notify.closeAll()
	})
	return err
}

// Status is the engine's state for the till and diagnostics.
type Status struct {
	// Online: the gateway answered the last call (or probe).
	Online bool
	// LastGatewayOK is the last answer (refusals included),
	// LastGatewaySuccess the last call that succeeded.
	LastGatewayOK      time.Time
	LastGatewaySuccess time.Time
	// LastGatewayError is the last failed call's error, LastGatewayErrorAt
	// when it failed; it stays after a recovery (then it is before
	// LastGatewaySuccess).
	LastGatewayError   string
	LastGatewayErrorAt time.Time
	// GatewayRefused, when set, says which settings to check: the
	// gateway's last answer refused posbridge's login, access code or keys
	// and no call succeeded since. The gateway still counts as online.
	GatewayRefused string
	// OfflineSince is when the gateway stopped answering (zero if online).
	OfflineSince time.Time
	// Queued counts checkouts stored but not yet at the gateway (queued or
	// submitting), QueuedAmount their total and OldestQueued when the
	// oldest was accepted: what the offline limits are about.
	Queued       int
	QueuedAmount pos.Money
	OldestQueued time.Time
	// Active counts checkouts at the gateway or a terminal.
	Active  int
	ByState map[pos.State]int
	Offline OfflineLimits
	// PausedUntil: a 429 paused every call to Hesabe until then.
	PausedUntil time.Time
	// LatePaid counts expired checkouts the gateway later reported paid.
	LatePaid int64
	// DroppedEvents counts terminal events dropped because the engine was
	// behind (gateway polling still finds the result), DroppedNotifications
	// changes not delivered to a slow subscriber.
	DroppedEvents        int64
	DroppedNotifications int64
	// StoreError is set when the counters could not be read: Queued,
	// QueuedAmount, OldestQueued, Active and ByState are then the last
	// ones read (none if never), as of CountsAt.
	StoreError string
	// CountsAt is when the counters were read.
	CountsAt time.Time
	// ClockJumps counts the changes of the system clock the engine saw
	// (the wall clock moved by more than 2 s against the monotonic
	// clock: NTP stepping it, someone setting it); LastClockJump is the
	// last one's size (negative: set back) and LastClockJumpAt the wall
	// clock just after it. Deadlines, back-off and polling keep counting
	// real time across a jump; stored and shown times follow the clock.
	ClockJumps      int64
	LastClockJump   time.Duration
	LastClockJumpAt time.Time
}

// storeCounts is what Status last read from the store.
type storeCounts struct {
	stats queue.Stats
	at    time.Time
}

// ClockSteps reports the steps of the system clock seen since start (as
// Status's ClockJumps, LastClockJump and LastClockJumpAt) without reading
// the store.
func (e *Engine) ClockSteps() (n int64, last time.Duration, at time.Time) {
	e.clk.read() // a jump since the last reading is counted now
	if n, l := e.clockJumps(); l != nil {
		return n, l.Size, l.At
	}
	return 0, 0, time.Time{}
}

// Status returns the engine's state. It costs one read transaction.
func (e *Engine) Status() Status {
	st := Status{Offline: e.opts.Offline, LatePaid: e.latePaid.Load(),
		DroppedEvents: e.droppedEvents.Load(), DroppedNotifications: e.notify.dropped.Load()}
	hs := e.health.snapshot()
	st.Online, st.LastGatewayOK, st.LastGatewaySuccess, st.OfflineSince = hs.online, hs.lastOK, hs.lastSuccess, hs.offlineSince
	st.LastGatewayError, st.LastGatewayErrorAt, st.GatewayRefused = hs.lastErr, hs.lastErrAt, hs.refused
	st.PausedUntil = e.pausedUntil()
	st.ClockJumps, st.LastClockJump, st.LastClockJumpAt = e.ClockSteps()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := e.store.Stats(ctx)
	if err != nil {
		st.StoreError = err.Error()
		last := e.lastCounts.Load()
		if last == nil {
			return st
		}
		s, st.CountsAt = last.stats, last.at
	} else {
		st.CountsAt = e.now()
		e.lastCounts.Store(&storeCounts{stats: s, at: st.CountsAt})
	}
	st.Queued, st.QueuedAmount, st.OldestQueued = s.Unsent, s.UnsentAmount, s.OldestUnsent
	st.Active = s.ByState[pos.StateSubmitting] + s.ByState[pos.StateSent] + s.ByState[pos.StateOnTerminal]
	st.ByState = s.ByState
	return st
}

// Online reports whether the gateway answered the last call.
func (e *Engine) Online() bool { return e.health.isOnline() }

// now is the wall clock (without a monotonic reading), for what is
// stored and shown; each reading also looks for a jump (clock.go).
func (e *Engine) now() time.Time {
	w, _, _ := e.clk.read()
	return w
}

// damagedPause is how long a loop rests between looks while the store's
// file is damaged.
const damagedPause = 10 * time.Second

// storeDamaged reports whether the store met a damaged page
// (queue.ErrDamaged): it then refuses every write until posbridge is
// restarted on a repaired file, so the loops make no gateway call whose
// outcome could not be recorded. The first time, it says so in the log.
func (e *Engine) storeDamaged() bool {
	if e.store.Damaged() == nil {
		return false
	}
	if e.damagedSaid.CompareAndSwap(false, true) {
		e.log.Error("the database file is damaged: the engine sends no checkout and records no result until posbridge "+
			"is restarted on a repaired file (posbridge salvage; docs/troubleshooting.md)", "err", e.store.Damaged())
	}
	return true
}

// kick wakes the dispatcher (never blocks).
func (e *Engine) kick() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// sleep waits d or until the engine stops; false when stopping.
func (e *Engine) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-e.ctx.Done():
		return false
	}
}

// move commits one state change (or, with to == seen.State, a field
// update) and publishes the result. It applies only if the checkout is
// still as the caller saw it (same state, same attempt); otherwise nothing
// is written and errMoved is returned.
func (e *Engine) move(ctx context.Context, seen pos.Checkout, to pos.State, reason string,
	mutate func(c *pos.Checkout) error) (pos.Checkout, error) {
	c, err := e.store.Transition(ctx, seen.ID, to, reason, func(c *pos.Checkout) error {
		if c.State != seen.State || c.Attempts != seen.Attempts {
			return errMoved
		}
		if to != c.State && to != pos.StateExpired && c.LastError == busyNote(c.TerminalID) {
			c.LastError = "" // the terminal took it (or it ended otherwise)
		}
		if mutate != nil {
			return mutate(c)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	e.publish(c)
	return c, nil
}

// errMoved: the checkout is no longer as the caller saw it.
var errMoved = errors.New("engine: checkout moved on meanwhile")

func hasState(list []pos.State, s pos.State) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (e *Engine) publish(c pos.Checkout) {
	e.notify.publish(c)
	if c.State.Final() {
		e.track.drop(c.ID)
	}
	if c.State.Final() || c.State == pos.StateQueued {
		e.kick() // a terminal may be free, or a checkout due
	}
}
