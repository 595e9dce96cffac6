// Package daemon wires posbridge's parts into the running bridge: the
// checkout store, the Hesabe client, the engine, the terminal links, the
// till API and the diagnostics endpoint. It owns their lifecycle: Open
// starts them in dependency order and fails fast (a busy port, a locked
// database); Close stops taking checkouts first, lets in-flight transitions
// finish, and closes the database last, within a bound.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/config"
	"github.com/posbridge/posbridge/internal/diag"
	"github.com/posbridge/posbridge/internal/engine"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/hitpay"
	"github.com/posbridge/posbridge/internal/logging"
	"github.com/posbridge/posbridge/internal/payout"
	"github.com/posbridge/posbridge/internal/pos"
	"github.com/posbridge/posbridge/internal/queue"
	"github.com/posbridge/posbridge/internal/requests"
)

// DBFile is the checkout database's name inside data_dir.
const DBFile = "posbridge.db"

// Options configures a Daemon.
type Options struct {
	Config  config.Config
	Version string
	Logger  *slog.Logger
	// Recent holds the log's recent warnings for the status page.
	Recent *logging.Recent
	// HesabeHTTP, if set, is the HTTP client for the gateway (tests).
	HesabeHTTP *http.Client
	// CloseTimeout bounds Run's shutdown (default 20 s).
	CloseTimeout time.Duration
}

// Daemon is the running bridge.
type Daemon struct {
	opts    Options
	cfg     config.Config
	log     *slog.Logger
	started time.Time

	store    *queue.Store
	gateway  *hesabe.Client
	gwCalls  gatewayCalls
	requests map[pos.RequestKind]engine.RequestHandler
	engine   *engine.Engine
	links    *links
	api      *api.Server
	diag     *diag.Server
	metrics  *diag.Metrics
	trace    *diag.Trace

	// acceptErr is set once a create found the accept log failed or the
	// database file damaged: from then on every checkout is refused until
	// a restart. While the disk is full it holds diskWatch's reason,
	// cleared once space is back.
	acceptErr atomic.Pointer[string]

	closeOnce sync.Once
	closeErr  error
}

// New checks the configuration and builds the parts; nothing is opened.
func New(opts Options) (*Daemon, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.RequireRun(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 20 * time.Second
	}
	d := &Daemon{opts: opts, cfg: cfg, log: opts.Logger, metrics: diag.NewMetrics(), trace: diag.NewTrace(500)}
	hc := cfg.Hesabe.Client()
	hc.Logger = d.log.With("component", "hesabe")
	hc.HTTPClient = opts.HesabeHTTP
	hc.OnCall = func(op string, elapsed time.Duration, err error) {
		d.metrics.ObserveGateway(op, elapsed, err)
		d.gwCalls.observe(err)
	}
	gw, err := hesabe.New(hc)
	if err != nil {
		return nil, err
	}
	d.gateway = gw
	if d.requests, err = d.requestHandlers(); err != nil {
		return nil, err
	}
	return d, nil
}

// requestHandlers builds the request kinds the configuration turns on.
func (d *Daemon) requestHandlers() (map[pos.RequestKind]engine.RequestHandler, error) {
	rc := d.cfg.Requests
	out := map[pos.RequestKind]engine.RequestHandler{}
	switch rc.Customers {
	case "hesabe":
		out[pos.KindCustomer] = requests.HesabeCustomers{Client: d.gateway}
	case "hitpay":
		hc := d.cfg.HitPay.Client()
		c, err := hitpay.New(hc)
		if err != nil {
			return nil, fmt.Errorf("hitpay: %w", err)
		}
		out[pos.KindCustomer] = requests.HitPayCustomers{Client: c}
	}
	if rc.Installments {
		out[pos.KindInstallments] = requests.HesabeInstallments{Client: d.gateway, MaxBatch: rc.MaxBatch}
	}
	if rc.Payees {
		pc := d.cfg.Payout.Client()
		pc.Logger = d.log.With("component", "payout")
		c, err := payout.New(pc)
		if err != nil {
			return nil, fmt.Errorf("payout: %w", err)
		}
		out[pos.KindPayee] = requests.Payees{Client: c}
	}
	return out, nil
}

// Open starts every part. On error, what was opened is closed again.
func (d *Daemon) Open(ctx context.Context) (err error) {
	d.started = time.Now()
	defer func() {
		if err != nil {
			closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = d.Close(closeCtx)
		}
	}()
	if err := os.MkdirAll(d.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	dbPath := filepath.Join(d.cfg.DataDir, DBFile)
	d.store, err = queue.Open(dbPath, queue.Options{LockTimeout: 2 * time.Second, Retention: d.cfg.Checkout.Retention.D(),
		Logger: d.log.With("component", "queue")})
	if err != nil {
		return err
	}
	d.links, err = newLinks(d.cfg, d.log, d.trace, d.metrics)
	if err != nil {
		return err
	}
	d.engine = engine.New(d.store, d.gateway, d.engineOptions())
	if err := d.links.open(ctx, d.engine.HandleTerminalEvent); err != nil {
		return err
	}
	if err := d.engine.Open(ctx); err != nil {
		return err
	}
	d.api, err = api.New(engineAdapter{Engine: d.engine, acceptErr: &d.acceptErr, store: d.store,
		disk: newDiskWatch(&d.acceptErr, diskProbe(d.store))}, d.links, api.Options{
		Addr: d.cfg.API.Listen, Token: d.cfg.API.Token.Value(), Requests: requestsAdapter{Engine: d.engine, kinds: d.requests},
		Logger: d.log.With("component", "api"),
	})
	if err != nil {
		return err
	}
	if err := d.api.Open(); err != nil {
		return err
	}
	diagToken := d.cfg.Diagnostics.Token.Value()
	if diagToken == "" {
		diagToken = d.cfg.API.Token.Value()
	}
	d.diag = diag.New(d.sources(), d.metrics, diag.Options{
		Addr: d.cfg.Diagnostics.Listen, Token: diagToken, Logger: d.log.With("component", "diagnostics"),
	})
	if err := d.diag.Open(); err != nil {
		return err
	}
	d.log.Info("posbridge running", "version", d.opts.Version, "till_api", d.api.URL(), "diagnostics", d.diag.URL(),
		"database", dbPath, "terminals", len(d.cfg.Terminals), "gateway", d.cfg.Hesabe.MerchantURL)
	return nil
}

// Close stops the parts in reverse order: the till API first (no new
// checkouts), then the engine (in-flight transitions finish or are left
// for reconciliation), the terminal links, diagnostics, and the database
// last. It keeps the first error but closes everything.
func (d *Daemon) Close(ctx context.Context) error {
	d.closeOnce.Do(func() {
		var errs []error
		if d.api != nil {
			errs = append(errs, d.api.Close(ctx))
		}
		if d.engine != nil {
			errs = append(errs, d.engine.Close(ctx))
		}
		if d.links != nil {
			errs = append(errs, d.links.close(ctx))
		}
		if d.diag != nil {
			errs = append(errs, d.diag.Close(ctx))
		}
		if d.store != nil {
			errs = append(errs, d.store.Close())
		}
		d.closeErr = errors.Join(errs...)
		if d.closeErr != nil {
			d.log.Warn("posbridge stopped with errors", "err", d.closeErr)
		} else {
			d.log.Info("posbridge stopped")
		}
	})
	return d.closeErr
}

// Run opens the daemon, waits for ctx to end, and closes it within
// Options.CloseTimeout.
//
// A till API or diagnostics listener that fails after start (its socket
// shut down or closed under it, an accept error that is not temporary)
// also ends Run: the daemon closes and Run returns that listener's error,
// so that `posbridge run` exits non-zero and the service manager restarts
// the bridge on a fresh socket (systemd Restart=on-failure, the Windows
// recovery actions). Restarting only the listener in-process would hide a
// fault the technician should see in the log and the service's restart
// count, and a bridge the till cannot reach must not look alive.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Open(ctx); err != nil {
		return err
	}
	failed := d.Wait(ctx)
	if failed != nil {
		failed = fmt.Errorf("%w; posbridge stopped so that the service manager restarts it", failed)
		d.log.Error("a listener failed; posbridge is stopping so that the service manager restarts it", "err", failed)
	} else {
		d.log.Info("posbridge stopping")
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), d.opts.CloseTimeout)
	defer cancel()
	return errors.Join(failed, d.Close(closeCtx))
}

// Wait blocks, after Open, until ctx is done (nil) or the till API or
// diagnostics listener fails (that listener's error). Run uses it; a
// caller that opens the daemon itself (the demo) waits with it too, so a
// dead listener is not hidden behind a bridge that looks alive.
func (d *Daemon) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-d.api.Failed():
		return err
	case err := <-d.diag.Failed():
		return err
	}
}

// APIURL is the till API's base URL (after Open).
func (d *Daemon) APIURL() string { return d.api.URL() }

// DiagURL is the diagnostics endpoint's base URL (after Open).
func (d *Daemon) DiagURL() string { return d.diag.URL() }

// BrokerAddr is the embedded MQTT broker's address ("" when none runs).
func (d *Daemon) BrokerAddr() string { return d.links.BrokerAddr() }

// Engine returns the checkout engine (after Open).
func (d *Daemon) Engine() *engine.Engine { return d.engine }

func (d *Daemon) engineOptions() engine.Options {
	ck, off := d.cfg.Checkout, d.cfg.Offline
	o := engine.DefaultOptions()
	o.DefaultDeadline = ck.DefaultDeadline.D()
	o.MaxDeadline = ck.MaxDeadline.D()
	o.MaxAmount = ck.MaxAmount.Money
	o.PollInterval = ck.PollInterval.D()
	o.DrainRate = ck.DrainRate
	o.Offline = engine.OfflineLimits{MaxCount: off.MaxCount, MaxAmount: off.MaxAmount.Money, MaxSingle: off.MaxSingle.Money}
	for _, t := range d.cfg.Terminals {
		o.Terminals = append(o.Terminals, t.ID)
	}
	o.Terminal = d.links
	o.Requests = d.requests
	o.MaxPendingRequests = d.cfg.Requests.MaxPending
	o.Logger = d.log.With("component", "engine")
	return o
}

// engineAdapter gives the till API the engine's status in its own shape,
// and tells the till and the diagnostics when the store can no longer
// accept checkouts: for now (a full disk) or until a restart.
type engineAdapter struct {
	*engine.Engine
	acceptErr *atomic.Pointer[string]
	disk      *diskWatch
	store     *queue.Store
}

// Create is the engine's; a failed accept log (a full or failing disk:
// every create is refused until a restart) is a 503 that says so, and is
// remembered for /readyz, instead of an "internal error". A create the
// disk had no room for (the log could not grow, or bbolt could not
// write) stored nothing: a 503 with Retry-After, until space is freed.
func (a engineAdapter) Create(ctx context.Context, req pos.CheckoutRequest) (pos.Checkout, bool, error) {
	c, existing, err := a.Engine.Create(ctx, req)
	if errors.Is(err, queue.ErrLogFailed) {
		msg := "every checkout is refused until posbridge restarts: " + err.Error()
		a.acceptErr.Store(&msg)
		return c, existing, pos.Errorf(pos.EUnavailable,
			"this bridge cannot store checkouts until it is restarted (its accept log failed; see its log): take the payment another way")
	}
	return c, existing, a.refuse(err, "nothing was stored", "nothing was stored; retry with the same Idempotency-Key once space is freed")
}

// refuse turns a store error caused by a damaged database file into a
// 503 saying so (what: what became of the request), remembered for
// /readyz and /v1/status, and one caused by a full disk into a 503 with
// Retry-After (whenFull: the rest of its sentence). Other errors are
// returned unchanged.
func (a engineAdapter) refuse(err error, what, whenFull string) error {
	if errors.Is(err, queue.ErrDamaged) {
		noteDamage(a.acceptErr, err)
		return pos.Errorf(pos.EUnavailable, "this bridge's database file is damaged: %s; take payments another way and call the technician", what)
	}
	return a.disk.refuse(err, whenFull)
}

// noteDamage makes "accepting checkouts" say that the database file is
// damaged (queue.ErrDamaged), until a restart: it replaces a full disk's
// reason, which would clear itself.
func noteDamage(acceptErr *atomic.Pointer[string], err error) {
	if err == nil {
		return
	}
	msg := "the database file is damaged, so posbridge takes no new checkouts and writes nothing to it: " + err.Error() +
		"; stop posbridge and follow \"database is damaged\" in docs/troubleshooting.md"
	if p := acceptErr.Load(); p == nil || *p != msg {
		acceptErr.Store(&msg)
	}
}

// The reads and a cancel fail too while the disk is full (a read first
// applies what the accept log holds): 503 with Retry-After, not 500.

func (a engineAdapter) Get(ctx context.Context, id string) (pos.Checkout, error) {
	c, err := a.Engine.Get(ctx, id)
	return c, a.refuse(err, "it cannot read this checkout", "it cannot read its checkouts until space is freed; retry later")
}

func (a engineAdapter) Wait(ctx context.Context, id string, since time.Time) (pos.Checkout, error) {
	c, err := a.Engine.Wait(ctx, id, since)
	return c, a.refuse(err, "it cannot read this checkout", "it cannot read its checkouts until space is freed; retry later")
}

func (a engineAdapter) Cancel(ctx context.Context, id string) (pos.Checkout, error) {
	c, err := a.Engine.Cancel(ctx, id)
	return c, a.refuse(err, "the checkout was not canceled", "the checkout was not canceled; retry once space is freed")
}

func (a engineAdapter) Recent(ctx context.Context, limit int, cursor string) ([]pos.Checkout, string, error) {
	list, next, err := a.Engine.Recent(ctx, limit, cursor)
	return list, next, a.refuse(err, "it cannot read its checkouts", "it cannot read its checkouts until space is freed; retry later")
}

// Status says accepting: false, with the reason, while the disk is full,
// once the accept log failed and once the database file is found
// damaged. While the store's counters cannot be
// read, the queue's are the last ones read, with their time.
func (a engineAdapter) Status() api.EngineStatus {
	st := a.Engine.Status()
	noteDamage(a.acceptErr, a.store.Damaged())
	if st.StoreError != "" || a.disk.isFull() {
		a.disk.check()
	}
	out := api.EngineStatus{Accepting: true, Online: st.Online, LastGatewayOK: st.LastGatewayOK, Queued: st.Queued,
		QueuedAmount: st.QueuedAmount, OldestQueued: st.OldestQueued}
	if st.StoreError != "" {
		out.CountsAsOf = st.CountsAt
	}
	if p := a.acceptErr.Load(); p != nil {
		out.Accepting, out.Reason = false, *p
	}
	return out
}

// requestsAdapter gives the till API the engine's requests and which
// kinds the configuration turns on.
type requestsAdapter struct {
	*engine.Engine
	kinds map[pos.RequestKind]engine.RequestHandler
}

// Serves reports whether the configuration turns kind on.
func (a requestsAdapter) Serves(kind pos.RequestKind) bool { return a.kinds[kind] != nil }

// gatewayCalls is the last failed and the last successful call of the
// Hesabe client, whoever made it, with their times. A "not found" is an
// answer that succeeded.
type gatewayCalls struct {
	mu          sync.Mutex
	lastErr     string
	lastErrAt   time.Time
	lastSuccess time.Time
}

func (g *gatewayCalls) observe(err error) {
	now := time.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil || errors.Is(err, hesabe.ErrNotFound) {
		g.lastSuccess = now
		return
	}
	g.lastErr, g.lastErrAt = err.Error(), now
}

func (g *gatewayCalls) snapshot() (lastErr string, lastErrAt, lastSuccess time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr, g.lastErrAt, g.lastSuccess
}

// sources feed the diagnostics endpoint.
func (d *Daemon) sources() diag.Sources {
	return diag.Sources{
		Version: d.opts.Version,
		Started: d.started,
		Gateway: func() diag.GatewayHealth {
			// The last answer is the engine's: an answer it can use
			// (refusals and "not found" included, 5xx not: a 503 must
			// not keep /readyz ok while every call fails). The last
			// error and the refusal of posbridge's settings are the
			// engine's too, with their times, so an old error shows as
			// past after a recovery. Calls the engine does not make
			// (the till API's terminal list) count too, by their time.
			st := d.engine.Status()
			g := diag.GatewayHealth{URL: d.cfg.Hesabe.MerchantURL, Online: st.Online, LastOK: st.LastGatewayOK,
				LastSuccess: st.LastGatewaySuccess, LastError: st.LastGatewayError, LastErrorAt: st.LastGatewayErrorAt,
				Refused: st.GatewayRefused}
			lastErr, lastErrAt, lastSuccess := d.gwCalls.snapshot()
			if lastErrAt.After(g.LastErrorAt) {
				g.LastError, g.LastErrorAt = lastErr, lastErrAt
			}
			if lastSuccess.After(g.LastSuccess) {
				g.LastSuccess = lastSuccess
			}
			return g
		},
		Queue: func(ctx context.Context) (diag.QueueHealth, error) {
			s, err := d.store.Stats(ctx)
			if err != nil {
				return diag.QueueHealth{}, err
			}
			q := diag.QueueHealth{ByState: s.ByState, Queued: s.Unsent, QueuedAmount: s.UnsentAmount,
				OldestQueued: s.OldestUnsent, DBPath: d.store.Path()}
			if fi, err := os.Stat(d.store.Path()); err == nil {
				q.DBSize = fi.Size()
			}
			return q, nil
		},
		Terminals: d.links.health,
		Ports:     listPorts,
		Trace:     d.trace,
		Errors:    d.opts.Recent,
		Ping:      d.links.ping,
		Requests:  d.requestsSource(),
		Clock: func() diag.ClockHealth {
			n, last, at := d.engine.ClockSteps() // not Status: no second store read per /readyz
			return diag.ClockHealth{Jumps: n, Last: last, LastAt: at}
		},
		Accepting: func() error {
			noteDamage(&d.acceptErr, d.store.Damaged())
			if p := d.acceptErr.Load(); p != nil {
				return errors.New(*p)
			}
			return nil
		},
	}
}

// requestsSource feeds the status page's request outbox (nil when no
// request kind is configured). Every configured gateway is listed, also
// before its first delivery (the engine knows only those it has tried).
func (d *Daemon) requestsSource() func(context.Context) (diag.RequestsHealth, error) {
	if len(d.requests) == 0 {
		return nil
	}
	return func(ctx context.Context) (diag.RequestsHealth, error) {
		st, err := d.engine.RequestStatus(ctx)
		if err != nil {
			return diag.RequestsHealth{}, err
		}
		names := map[string]bool{}
		for _, h := range d.requests {
			names[h.Gateway()] = true
		}
		for name := range st.Gateways {
			names[name] = true
		}
		out := diag.RequestsHealth{Pending: st.Pending, NextDue: st.NextDue}
		for name := range names {
			g := st.Gateways[name]
			out.Gateways = append(out.Gateways, diag.RequestGatewayHealth{Name: name, Down: g.Down,
				DownSince: g.DownSince, NextRetry: g.Retry, LastOK: g.LastOK, LastError: g.LastError})
		}
		return out, nil
	}
}
