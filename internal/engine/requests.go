package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
)

// Requests: every other kind of gateway request in the same outbox.
//
// A checkout is one kind of queued request with a long tail (a terminal,
// a payment to follow); customers, installment batches and payees are
// delivered once and answered once. They share the store, the group
// commit, the idempotency rule, the error classes, the back-off and the
// shutdown with checkouts; what differs per kind is a RequestHandler:
// how to check and store what the till sent, how to deliver it, and
// whether a request that may already have been applied may be sent again.
// One loop drives every kind. See docs/requests.md.

// RequestHandler is one request kind's rules.
type RequestHandler interface {
	// Gateway names where the kind goes ("hesabe", "hitpay", "payout").
	Gateway() string
	// Prepare checks what the till sent (a JSON body) and returns what to
	// store. Errors are *pos.Error naming the field. It runs before
	// anything is stored, so it must not call the gateway.
	Prepare(body []byte, now time.Time) (Prepared, error)
	// Deliver sends a stored request and returns the result to keep (the
	// till-facing JSON of the gateway's answer). Errors carry a
	// pos.ErrorClass: retryable (not applied), permanent (refused),
	// ambiguous (may have been applied).
	Deliver(ctx context.Context, r pos.Request) (json.RawMessage, error)
	// ResendAmbiguous reports whether a request that may already have been
	// applied may be sent again: the gateway refuses or folds a duplicate
	// (Deliver then adopts it), or a duplicate is harmless. When false, such
	// a request ends uncertain for a person to check.
	ResendAmbiguous() bool
	// Explain turns a delivery error into the reason kept on the request
	// (the gateway's code and message, the till field it names).
	Explain(err error) pos.RequestError
}

// Prepared is a request ready to store.
type Prepared struct {
	// Payload is the gateway request as it will be sent (sensitive fields
	// already sealed: it is written to disk).
	Payload json.RawMessage
	// Hash fingerprints the till's request for idempotency; it must not
	// reveal sensitive fields either.
	Hash    string
	TillRef string
	// NotAfter: not delivered by then, the request expires (zero: never).
	NotAfter time.Time
}

// GatewayHesabe is the gateway name of Hesabe's request kinds: they wait
// while the checkout engine sees Hesabe offline or paused by a 429.
const GatewayHesabe = "hesabe"

// retryAfter is how long a 429 (or a gateway's busy answer) asked to wait
// (a Hesabe 429 without Retry-After: 1 s; its pause may be longer).
func retryAfter(err error) time.Duration {
	if d, limited := rateLimited(err); limited {
		return max(d, rateLimitInitial)
	}
	var ra interface{ RetryAfterDelay() time.Duration }
	if errors.As(err, &ra) {
		return ra.RetryAfterDelay()
	}
	return 0
}

// noAnswer reports that a failed call got no HTTP answer at all (refused,
// reset, timed out): the gateway is unreachable, not unhappy with this
// request.
func noAnswer(err error) bool {
	var herr *hesabe.Error
	if errors.As(err, &herr) {
		return herr.HTTPStatus == 0
	}
	var sc interface{ HTTPStatusCode() int }
	if errors.As(err, &sc) {
		return sc.HTTPStatusCode() == 0
	}
	return true
}

// requestWorkers bounds concurrent deliveries of requests (one per
// gateway at a time).
const requestWorkers = 4

// gatewayGate holds back one gateway's requests after it failed to answer,
// so an outage's backlog is not hammered request by request: the first
// request due after the gate opens probes it, and the rest follow in
// order once it answers.
type gatewayGate struct {
	until    time.Time
	failures int
	lastErr  string
	lastOK   time.Time
	downAt   time.Time
}

type requestState struct {
	wake     chan struct{}
	mu       sync.Mutex
	inflight map[string]bool // request ids being delivered
	busy     map[string]bool // gateways with a delivery under way
	gates    map[string]*gatewayGate
}

func (e *Engine) handler(kind pos.RequestKind) (RequestHandler, error) {
	h := e.opts.Requests[kind]
	if h == nil {
		return nil, pos.Errorf(pos.ENotFound, "%s requests are not configured on this bridge", kind)
	}
	return h, nil
}

// SubmitRequest checks a request of kind from the till (its JSON body),
// stores it durably and returns it; the engine delivers it when its
// gateway answers. The same idempotency key with the same body returns
// the stored request (existing=true); with another body it is a conflict.
// MaxPendingRequests bounds how many wait at once (pos.ELimit beyond).
func (e *Engine) SubmitRequest(ctx context.Context, kind pos.RequestKind, idemKey string, body []byte) (pos.Request, bool, error) {
	if e.closed.Load() {
		return pos.Request{}, false, pos.Errorf(pos.EUnavailable, "the bridge is shutting down")
	}
	h, err := e.handler(kind)
	if err != nil {
		return pos.Request{}, false, err
	}
	p, err := h.Prepare(body, e.now())
	if err != nil {
		return pos.Request{}, false, err
	}
	r, existing, err := e.store.CreateRequest(ctx, pos.Request{
		Kind: kind, Gateway: h.Gateway(), IdempotencyKey: idemKey, RequestHash: p.Hash,
		TillRef: p.TillRef, Payload: p.Payload, NotAfter: p.NotAfter,
	}, e.opts.MaxPendingRequests)
	if err != nil {
		return pos.Request{}, false, err
	}
	if !existing {
		e.log.Info("request accepted", "request", r.ID, "kind", kind, "gateway", r.Gateway, "till_reference", r.TillRef)
		e.kickRequests()
	}
	return r, existing, nil
}

// GetRequest returns a request by id, of kind ("" for any kind).
func (e *Engine) GetRequest(ctx context.Context, kind pos.RequestKind, id string) (pos.Request, error) {
	r, err := e.store.GetRequest(ctx, id)
	if err == nil && kind != "" && r.Kind != kind {
		return pos.Request{}, pos.Errorf(pos.ENotFound, "no %s request %q", kind, id)
	}
	return r, err
}

// RecentRequests lists requests newest first (kind "" for all), paged by
// the returned cursor.
func (e *Engine) RecentRequests(ctx context.Context, kind pos.RequestKind, limit int, cursor string) ([]pos.Request, string, error) {
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	return e.store.RecentRequests(ctx, kind, cursor, limit)
}

// CancelRequest cancels a queued request. One already sent (or being sent)
// cannot be taken back: that is a pos.EConflict naming its state.
func (e *Engine) CancelRequest(ctx context.Context, kind pos.RequestKind, id string) (pos.Request, error) {
	if _, err := e.GetRequest(ctx, kind, id); err != nil {
		return pos.Request{}, err
	}
	r, err := e.store.TransitionRequest(ctx, id, pos.RequestCanceled, "canceled by the till", nil)
	if err != nil {
		return r, err
	}
	e.log.Info("request canceled", "request", id, "kind", r.Kind)
	return r, nil
}

// RequestStatus is the request outbox for diagnostics.
type RequestStatus struct {
	Pending  int
	NextDue  time.Time
	Gateways map[string]GatewayStatus
}

// GatewayStatus is what the engine knows of one request gateway.
type GatewayStatus struct {
	// Down: the last delivery got no answer; deliveries wait until Retry.
	Down      bool
	DownSince time.Time
	Retry     time.Time
	LastOK    time.Time
	LastError string
}

// RequestStatus returns the outbox's counters and each gateway's state.
func (e *Engine) RequestStatus(ctx context.Context) (RequestStatus, error) {
	st, err := e.store.RequestStats(ctx)
	out := RequestStatus{Pending: st.Pending, NextDue: st.NextDue, Gateways: map[string]GatewayStatus{}}
	e.reqs.mu.Lock()
	for name, g := range e.reqs.gates {
		out.Gateways[name] = GatewayStatus{Down: g.failures > 0, DownSince: g.downAt, Retry: g.until,
			LastOK: g.lastOK, LastError: g.lastErr}
	}
	e.reqs.mu.Unlock()
	if hs := e.health.snapshot(); !hs.online {
		lastOK, lastErr, since := hs.lastOK, hs.lastErr, hs.offlineSince
		// Hesabe's requests wait while the checkout engine sees Hesabe
		// offline: one fact, shown the same way in both places.
		g := out.Gateways[GatewayHesabe]
		g.Down, g.LastError = true, lastErr
		if g.DownSince.IsZero() || since.Before(g.DownSince) {
			g.DownSince = since
		}
		if lastOK.After(g.LastOK) {
			g.LastOK = lastOK
		}
		out.Gateways[GatewayHesabe] = g
	}
	return out, err
}

func (e *Engine) kickRequests() {
	select {
	case e.reqs.wake <- struct{}{}:
	default:
	}
}

// reconcileRequests settles the requests a crash left in submitting: their
// outcome is unknown, so they are resent only where that is safe.
func (e *Engine) reconcileRequests(ctx context.Context) error {
	for {
		open, err := e.store.SubmittingRequests(ctx, 100)
		if err != nil {
			return fmt.Errorf("read submitting requests: %w", err)
		}
		if len(open) == 0 {
			return nil
		}
		for _, r := range open {
			e.afterAmbiguous(ctx, r, errors.New("the bridge stopped while the request was being sent"))
		}
	}
}

// requestLoop delivers due requests, one at a time per gateway (so each
// gateway receives them in acceptance order), holding back a gateway that
// does not answer. It also prunes finished requests hourly.
func (e *Engine) requestLoop() {
	sem := make(chan struct{}, requestWorkers)
	var gateways []string
	seen := map[string]bool{}
	for _, h := range e.opts.Requests {
		if !seen[h.Gateway()] {
			seen[h.Gateway()] = true
			gateways = append(gateways, h.Gateway())
		}
	}
	var lastPrune time.Time
	for e.ctx.Err() == nil {
		if e.storeDamaged() {
			e.sleep(damagedPause)
			continue
		}
		now := e.now()
		if now.Sub(lastPrune) > time.Hour {
			e.pruneRequests(e.ctx)
			lastPrune = now
			// Requests queued for a gateway no kind uses any more (the
			// merchant changed the configuration) are failed, not left
			// unseen: dispatchGateway finds no handler for them.
			if stored, err := e.store.QueuedRequestGateways(e.ctx); err == nil {
				for _, gw := range stored {
					if !seen[gw] {
						seen[gw] = true
						gateways = append(gateways, gw)
					}
				}
			}
			slices.Sort(gateways)
		}
		started := 0
		wait := time.Minute
		for _, gw := range gateways {
			n, next, ok := e.dispatchGateway(gw, now, sem)
			if !ok {
				return
			}
			started += n
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(now), 10*time.Millisecond))
			}
		}
		if started > 0 {
			wait = min(wait, time.Second) // a delivery finishing kicks sooner
		}
		e.idleRequests(wait)
	}
}

// dispatchGateway expires gw's overdue requests and starts the delivery of
// the next one. It returns how many it started, when gw next needs a look
// (zero: only on a kick), and false when the engine stops.
func (e *Engine) dispatchGateway(gw string, now time.Time, sem chan struct{}) (started int, next time.Time, _ bool) {
	const batch = 64
	due, err := e.store.DueRequests(e.ctx, gw, now, batch)
	if err != nil {
		if e.ctx.Err() == nil {
			e.log.Error("reading due requests failed", "gateway", gw, "err", err)
		}
		return 0, now.Add(time.Second), e.ctx.Err() == nil
	}
	open := e.gatewayOpen(gw, now) && !e.gatewayBusy(gw)
	expiring := false // a held-back request will expire: look again soon
	for _, r := range due {
		if !r.NotAfter.IsZero() && now.After(r.NotAfter) {
			// Expire even while the gateway is held back: the till must
			// not see "queued" for what can no longer be sent.
			e.expireRequest(e.ctx, r, "not delivered before it expired")
			continue
		}
		if !open || e.claimedRequest(r.ID) {
			expiring = expiring || !r.NotAfter.IsZero()
			continue
		}
		h := e.opts.Requests[r.Kind]
		if h == nil || h.Gateway() != gw {
			e.failUnconfigured(r)
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-e.ctx.Done():
			return started, next, false
		}
		e.claimRequest(r.ID, gw)
		started++
		e.wg.Add(1)
		go func(r pos.Request) {
			defer e.wg.Done()
			defer func() {
				<-sem
				e.releaseRequest(r.ID, gw)
				e.kickRequests()
			}()
			e.deliver(r, h)
		}(r)
		// One delivery per gateway at a time, so each gateway receives its
		// requests in acceptance order (and one that failed is probed by
		// a single request); the next starts when this one ends.
		open = false
	}
	switch {
	case !open:
		next = e.gateOpensAt(gw)
		if expiring {
			// Held back (possibly with no probe scheduled, while the
			// checkout engine sees Hesabe offline): look at least every
			// second, so a request expires on time even when the wall
			// clock jumps (a gateway without a battery clock setting its
			// time from NTP after boot).
			if at := now.Add(expiryRecheck); next.IsZero() || at.Before(next) {
				next = at
			}
		}
	case started > 0:
		// The finishing delivery kicks the loop.
	default:
		if at, ok, err := e.store.NextRequestDue(e.ctx, gw); err == nil && ok && at.After(now) {
			next = at
		}
	}
	return started, next, true
}

// expiryRecheck is how often the request loop looks at held-back requests
// that can expire.
const expiryRecheck = time.Second

func (e *Engine) idleRequests(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-e.reqs.wake:
	case <-t.C:
	case <-e.ctx.Done():
	}
}

func (e *Engine) claimedRequest(id string) bool {
	e.reqs.mu.Lock()
	defer e.reqs.mu.Unlock()
	return e.reqs.inflight[id]
}

func (e *Engine) claimRequest(id, gw string) {
	e.reqs.mu.Lock()
	e.reqs.inflight[id] = true
	e.reqs.busy[gw] = true
	e.reqs.mu.Unlock()
}

func (e *Engine) releaseRequest(id, gw string) {
	e.reqs.mu.Lock()
	delete(e.reqs.inflight, id)
	delete(e.reqs.busy, gw)
	e.reqs.mu.Unlock()
}

// gatewayBusy: a delivery to gw is under way.
func (e *Engine) gatewayBusy(gw string) bool {
	e.reqs.mu.Lock()
	defer e.reqs.mu.Unlock()
	return e.reqs.busy[gw]
}

// gatewayOpen: the gateway is not held back (a Hesabe request also waits
// while the checkout engine sees Hesabe offline or paused by a 429).
func (e *Engine) gatewayOpen(gw string, now time.Time) bool {
	if gw == GatewayHesabe && (!e.health.isOnline() || e.paused()) {
		return false
	}
	e.reqs.mu.Lock()
	defer e.reqs.mu.Unlock()
	g := e.reqs.gates[gw]
	return g == nil || !now.Before(g.until)
}

// gateOpensAt is when gw is tried again: when its gate opens, or for
// Hesabe when a 429's pause ends (zero when it is held back only because
// the checkout engine sees Hesabe offline, which kicks when that changes).
func (e *Engine) gateOpensAt(gw string) time.Time {
	var at time.Time
	if gw == GatewayHesabe {
		at = e.pausedUntil()
	}
	e.reqs.mu.Lock()
	defer e.reqs.mu.Unlock()
	if g := e.reqs.gates[gw]; g != nil && g.failures > 0 && g.until.After(at) {
		at = g.until
	}
	return at
}

func (e *Engine) gate(gw string) *gatewayGate {
	g := e.reqs.gates[gw]
	if g == nil {
		g = &gatewayGate{}
		e.reqs.gates[gw] = g
	}
	return g
}

// gatewayAnswered records that gw answered (whatever it said).
func (e *Engine) gatewayAnswered(gw string) {
	e.reqs.mu.Lock()
	g := e.gate(gw)
	was := g.failures > 0
	g.failures, g.until, g.downAt, g.lastOK = 0, time.Time{}, time.Time{}, e.now()
	e.reqs.mu.Unlock()
	if was {
		e.log.Info("request gateway answers again; delivering what waited", "gateway", gw)
		e.kickRequests()
	}
}

// gatewayFailed holds gw back for a back-off that grows with each failure.
func (e *Engine) gatewayFailed(gw string, err error, retryAfter time.Duration) {
	e.reqs.mu.Lock()
	g := e.gate(gw)
	if g.failures == 0 {
		g.downAt = e.now()
		e.log.Warn("request gateway does not answer; holding its requests", "gateway", gw, "err", err)
	}
	g.failures++
	g.lastErr = err.Error()
	g.until = e.now().Add(max(e.backoff(g.failures), retryAfter))
	e.reqs.mu.Unlock()
}

// deliver runs one attempt: durable submitting first, then the call, then
// the outcome in one transition.
func (e *Engine) deliver(seen pos.Request, h RequestHandler) {
	ctx := e.ctx
	if seen.Gateway == GatewayHesabe {
		// A 429 answering another call since the loop started this
		// delivery pauses it too; waited out before submitting, so a stop
		// meanwhile leaves the request queued, not in doubt.
		if _, err := e.awaitPause(ctx); err != nil {
			return
		}
	}
	r, err := e.store.TransitionRequest(ctx, seen.ID, pos.RequestSubmitting, "sending", func(cur *pos.Request) error {
		if cur.State != pos.RequestQueued || cur.Attempts != seen.Attempts {
			return errMoved
		}
		return nil
	})
	if err != nil {
		e.logRequestErr("start delivery", seen.ID, err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, e.opts.CallTimeout)
	res, err := h.Deliver(cctx, r)
	cancel()
	if r.Gateway == GatewayHesabe && ctx.Err() == nil {
		e.health.result(ctx, err) // Hesabe's reachability is one fact for checkouts and requests
	}
	// An answer in hand (accepted or refused) is recorded even if the
	// engine is stopping (Close waits for this, and does not close the
	// store). Left in submitting, the next start could only take it for
	// an ambiguous delivery: uncertain, or sent again.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.CallTimeout)
	defer cancel()
	if err == nil {
		e.gatewayAnswered(r.Gateway)
		_, err := e.store.TransitionRequest(rctx, r.ID, pos.RequestSucceeded, "delivered", func(cur *pos.Request) error {
			cur.Result, cur.Error = res, nil
			return nil
		})
		e.logRequestErr("record delivery", r.ID, err)
		if err == nil {
			e.log.Info("request delivered", "request", r.ID, "kind", r.Kind, "gateway", r.Gateway, "attempts", r.Attempts)
		}
		return
	}
	refused := pos.ClassOf(err) == pos.ClassPermanent &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	if ctx.Err() != nil && !refused {
		// Stopping: the call was canceled mid-way. The request stays in
		// submitting and is reconciled at the next start.
		return
	}
	switch pos.ClassOf(err) {
	case pos.ClassRetryable:
		ra := retryAfter(err)
		if _, limited := rateLimited(err); limited && r.Gateway == GatewayHesabe {
			ra = max(ra, e.pauseLeft()) // the pause this 429 started or joined
		}
		e.gatewayFailed(r.Gateway, err, ra)
		// Unreachable: the gateway is held back as a whole (gatewayFailed)
		// and the request keeps its place at the head of its gateway's
		// queue, so the backlog goes out in acceptance order when the
		// gateway answers. An answer (5xx, 429) may be about this very
		// request: it backs off on its own, so it cannot block the rest.
		e.requeue(ctx, r, h, err, max(e.backoff(r.Attempts), ra), "gateway did not answer; will retry", noAnswer(err))
	case pos.ClassPermanent:
		e.gatewayAnswered(r.Gateway)
		why := h.Explain(err)
		_, err := e.store.TransitionRequest(rctx, r.ID, pos.RequestFailed, "refused by the gateway", func(cur *pos.Request) error {
			cur.Error = &why
			return nil
		})
		e.logRequestErr("record refusal", r.ID, err)
		e.log.Warn("request refused by the gateway", "request", r.ID, "kind", r.Kind, "gateway", r.Gateway,
			"code", why.Code, "reason", why.Message)
	default:
		e.gatewayFailed(r.Gateway, err, 0)
		e.afterAmbiguous(ctx, r, err)
	}
}

// ReasonMaybeApplied is the history reason of a request put back in the
// queue although its last attempt may have been applied; a handler's
// Deliver checks MayHaveBeenApplied to tell "the gateway already has it"
// (adopt) from "someone else's request has this key" (refuse).
const ReasonMaybeApplied = "may have reached the gateway; sending again"

// MayHaveBeenApplied reports whether an earlier attempt of r may have been
// applied by the gateway.
func MayHaveBeenApplied(r pos.Request) bool {
	for _, t := range r.History {
		if t.Reason == ReasonMaybeApplied {
			return true
		}
	}
	return false
}

// requeue puts a request that was not applied (or, with reason
// ReasonMaybeApplied, may have been) back in the queue, or expires it when
// delay would make it too late. keepPlace leaves its next attempt (and so
// its place in its gateway's queue) as it was; otherwise it waits delay.
func (e *Engine) requeue(ctx context.Context, r pos.Request, h RequestHandler, cause error, delay time.Duration, reason string, keepPlace bool) {
	next := e.now().Add(delay)
	if !r.NotAfter.IsZero() && next.After(r.NotAfter) {
		why := h.Explain(cause)
		_, err := e.store.TransitionRequest(ctx, r.ID, pos.RequestExpired, "the gateway did not answer before it expired",
			func(cur *pos.Request) error {
				cur.Error = &pos.RequestError{Code: "expired", Message: "not delivered before it expired; last error: " + why.Message}
				return nil
			})
		e.logRequestErr("expire request", r.ID, err)
		return
	}
	_, err := e.store.TransitionRequest(ctx, r.ID, pos.RequestQueued, reason, func(cur *pos.Request) error {
		if !keepPlace {
			cur.NextAttemptAt = next
		}
		why := h.Explain(cause)
		cur.Error = &why
		return nil
	})
	e.logRequestErr("schedule retry", r.ID, err)
}

// afterAmbiguous handles a request that may have been applied: resent
// where the kind allows (its gateway folds duplicates), otherwise
// uncertain.
func (e *Engine) afterAmbiguous(ctx context.Context, r pos.Request, cause error) {
	h := e.opts.Requests[r.Kind]
	if h != nil && h.ResendAmbiguous() {
		e.log.Warn("request may have reached the gateway; sending it again (the gateway folds duplicates)",
			"request", r.ID, "kind", r.Kind, "err", cause)
		e.requeue(ctx, r, h, cause, e.backoff(r.Attempts), ReasonMaybeApplied, false)
		return
	}
	msg := "the connection broke after the request was sent, so the gateway may have applied it; " +
		"it is not sent again automatically: check the gateway's dashboard"
	_, err := e.store.TransitionRequest(ctx, r.ID, pos.RequestUncertain, "outcome unknown", func(cur *pos.Request) error {
		cur.Error = &pos.RequestError{Code: "ambiguous", Message: msg + " (" + cause.Error() + ")"}
		return nil
	})
	e.logRequestErr("mark request uncertain", r.ID, err)
	e.log.Error("request outcome unknown; not resending", "request", r.ID, "kind", r.Kind, "gateway", r.Gateway, "err", cause)
}

func (e *Engine) expireRequest(ctx context.Context, r pos.Request, why string) {
	_, err := e.store.TransitionRequest(ctx, r.ID, pos.RequestExpired, why, func(cur *pos.Request) error {
		cur.Error = &pos.RequestError{Code: "expired", Message: why}
		return nil
	})
	e.logRequestErr("expire request", r.ID, err)
}

// failUnconfigured ends a stored request whose kind is no longer
// configured (the merchant removed its gateway).
func (e *Engine) failUnconfigured(r pos.Request) {
	_, err := e.store.TransitionRequest(e.ctx, r.ID, pos.RequestFailed, "kind not configured", func(cur *pos.Request) error {
		cur.Error = &pos.RequestError{Code: "not_configured",
			Message: fmt.Sprintf("%s requests are no longer configured on this bridge", r.Kind)}
		return nil
	})
	e.logRequestErr("fail unconfigured request", r.ID, err)
}

func (e *Engine) logRequestErr(what, id string, err error) {
	if err == nil || errors.Is(err, errMoved) || e.ctx.Err() != nil {
		return
	}
	if pos.ErrorCode(err) == pos.EConflict {
		e.log.Debug(what+": request changed meanwhile", "request", id, "err", err)
		return
	}
	e.log.Error(what+" failed", "request", id, "err", err)
}

// pruneRequests removes finished requests past the retention.
func (e *Engine) pruneRequests(ctx context.Context) {
	for ctx.Err() == nil {
		n, more, err := e.store.PruneRequests(ctx, e.now())
		if err != nil {
			if ctx.Err() == nil {
				e.log.Error("pruning finished requests failed", "err", err)
			}
			return
		}
		if n > 0 {
			e.log.Debug("pruned finished requests", "count", n)
		}
		if !more {
			return
		}
	}
}
