package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/hesabe"
	"github.com/posbridge/posbridge/internal/pos"
)

// probeInvoiceNumber is looked up to test the link: no checkout ever has
// it (the store's numbers are PB + 8 hex digits + 10 digits), so the
// answer is "not found", which proves the gateway answers.
const probeInvoiceNumber = "PBPROBE"

// health tracks whether the gateway answers. Offline: the last call got
// no answer (network error, timeout, reset) or a 5xx. Online: any answer
// (including "not found" and refusals). A 429 is an answer too; whatever
// call it answered (create, look-up, poll, probe, a Hesabe request), it
// pauses every call to Hesabe for its Retry-After, or without one for a
// back-off that grows with each 429 in a row (Engine.rateLimitHit).
//
// Apart from reachability it keeps the last error with its time, the last
// call that succeeded, and refused: what to check when the gateway's last
// answer refused posbridge's settings (credentialsProblem). A refusal is
// an answer, so it never makes the engine offline; it fails readiness
// instead, until a call succeeds.
type health struct {
	e            *Engine
	mu           sync.Mutex
	online       bool
	lastOK       time.Time // the last answer, refusals included
	okMono       time.Duration
	lastSuccess  time.Time // the last call that succeeded ("not found" included)
	lastErr      string
	lastErrAt    time.Time
	refused      string
	offlineSince time.Time
}

// healthSnapshot is health as Status reports it.
type healthSnapshot struct {
	online       bool
	lastOK       time.Time
	okMono       time.Duration // lastOK on the monotonic clock
	lastSuccess  time.Time
	lastErr      string
	lastErrAt    time.Time
	refused      string
	offlineSince time.Time
}

func (h *health) init(e *Engine) {
	h.e = e
	h.online = true // until a call says otherwise; Open probes at once
}

func (h *health) snapshot() healthSnapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return healthSnapshot{online: h.online, lastOK: h.lastOK, okMono: h.okMono, lastSuccess: h.lastSuccess,
		lastErr: h.lastErr, lastErrAt: h.lastErrAt, refused: h.refused, offlineSince: h.offlineSince}
}

func (h *health) isOnline() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.online
}

// result records the outcome of a look-up (not found is an answer).
func (h *health) result(ctx context.Context, err error) {
	switch {
	case err == nil || errors.Is(err, hesabe.ErrNotFound):
		h.succeeded()
	case ctx.Err() != nil:
		// Our own cancellation says nothing about the gateway.
	default:
		h.fail(err)
	}
}

// succeeded records a call that succeeded: the gateway answers, and a
// run of 429s is over (the next one pauses for the shortest time again),
// and a refusal of posbridge's settings is over. The last error stays,
// with its time: it is now a past one (before lastSuccess).
func (h *health) succeeded() {
	h.e.rateLimitOver()
	h.mu.Lock()
	h.lastSuccess, h.refused = h.e.now(), ""
	h.mu.Unlock()
	h.ok()
}

// ok records that the gateway answered.
func (h *health) ok() {
	h.mu.Lock()
	was := h.online
	h.online, h.lastOK, h.okMono, h.offlineSince = true, h.e.now(), h.e.clk.mono(), time.Time{}
	h.mu.Unlock()
	if !was {
		h.e.log.Info("gateway reachable again; draining stored checkouts")
		h.e.mu.Lock()
		h.e.recover = true
		h.e.mu.Unlock()
		h.e.kick()
		h.e.kickRequests()
	}
}

func (h *health) fail(err error) {
	if !unreachable(err) {
		h.ok() // it answered, if only to refuse
		h.mu.Lock()
		h.lastErr, h.lastErrAt = err.Error(), h.e.now()
		if what := credentialsProblem(err); what != "" {
			h.refused = what
		}
		h.mu.Unlock()
		if ra, limited := rateLimited(err); limited {
			h.e.rateLimitHit(ra)
		}
		return
	}
	h.mu.Lock()
	was := h.online
	h.online, h.lastErr, h.lastErrAt = false, err.Error(), h.e.now()
	if was {
		h.offlineSince = h.e.now()
	}
	h.mu.Unlock()
	if was {
		h.e.log.Warn("gateway unreachable; storing checkouts within the offline limits", "err", err)
	}
}

// rateLimited reports whether err is a 429 from Hesabe, and its
// Retry-After (0 when it gave none).
func rateLimited(err error) (retryAfter time.Duration, limited bool) {
	var herr *hesabe.Error
	if errors.As(err, &herr) && herr.HTTPStatus == http.StatusTooManyRequests {
		return max(herr.RetryAfter, 0), true
	}
	return 0, false
}

// A 429 without a Retry-After pauses every call to Hesabe for
// rateLimitInitial, doubling with each further 429 in a row up to
// rateLimitMax, jittered to between ¾ and all of it (never below
// rateLimitInitial), so bridges throttled together do not come back
// together. A call that succeeds ends the run.
const (
	rateLimitInitial = time.Second
	rateLimitMax     = time.Minute
)

// rateLimit is the run of 429s the pause is about.
type rateLimit struct {
	mu     sync.Mutex
	streak int // 429s in a row, each after the pause before it
}

// rateLimitHit pauses every call to Hesabe after a 429: for its
// Retry-After when it gave one, else for the run's back-off. A 429 that
// arrives while the pause it belongs to is under way (an answer to a call
// made before that pause began, of a burst the gateway refused at once)
// does not lengthen the run.
func (e *Engine) rateLimitHit(retryAfter time.Duration) {
	e.rl.mu.Lock()
	defer e.rl.mu.Unlock()
	if e.paused() {
		if retryAfter > 0 {
			e.pause(retryAfter, e.rl.streak)
		}
		return
	}
	e.rl.streak++
	d := retryAfter
	if d <= 0 {
		d = rateLimitDelay(e.rl.streak)
	}
	e.pause(d, e.rl.streak)
}

// rateLimitOver ends a run of 429s.
func (e *Engine) rateLimitOver() {
	e.rl.mu.Lock()
	e.rl.streak = 0
	e.rl.mu.Unlock()
}

// rateLimitDelay is the pause after the n-th 429 in a row without a
// Retry-After: 1 s, 2 s, 4 s … up to a minute, jittered to ¾–1× of it,
// at least 1 s.
func rateLimitDelay(n int) time.Duration {
	d := rateLimitInitial
	for i := 1; i < n && d < rateLimitMax; i++ {
		d *= 2
	}
	d = min(d, rateLimitMax)
	return max(d*3/4+rand.N(d/4+1), rateLimitInitial)
}

// credentialsProblem says which of posbridge's Hesabe settings to check
// when err is the gateway refusing them ("" when it is not): the merchant
// login refused, a 401 or 403 on a call after a fresh login (the client
// logs in again and retries once), an unknown merchant, or an answer that
// cannot be decrypted with our keys (Hesabe answers a request it cannot
// decrypt with an error encrypted in the merchant's keys). The same
// classes as doctor's gateway.login line.
func credentialsProblem(err error) string {
	var herr *hesabe.Error
	if !errors.As(err, &herr) || herr.HTTPStatus == 0 {
		return ""
	}
	var syntax *json.SyntaxError
	switch {
	case herr.Code == hesabe.CodeInvalidLogin ||
		herr.Op == "login" && (herr.HTTPStatus == http.StatusUnauthorized || herr.HTTPStatus == http.StatusForbidden):
		return "gateway refuses posbridge's merchant login: check hesabe.username/password"
	case herr.HTTPStatus == http.StatusUnauthorized || herr.HTTPStatus == http.StatusForbidden:
		return fmt.Sprintf("gateway refuses posbridge's credentials (HTTP %d on %s after a fresh login): "+
			"check hesabe.access_code (sandbox and production differ)", herr.HTTPStatus, herr.Op)
	case herr.Code == hesabe.CodeInvalidMerchant:
		return "gateway does not know this merchant: check hesabe.merchant_code and hesabe.access_code"
	case errors.Is(err, crypto.ErrBadPadding) || errors.As(err, &syntax):
		return "gateway's answers cannot be decrypted with posbridge's keys: " +
			"check hesabe.secret_key and hesabe.iv_key (same merchant and environment as hesabe.access_code)"
	}
	return ""
}

// unreachable: the gateway gave no usable answer.
func unreachable(err error) bool {
	var herr *hesabe.Error
	if errors.As(err, &herr) {
		return herr.HTTPStatus == 0 || (herr.HTTPStatus >= 500 && herr.HTTPStatus != http.StatusTooManyRequests)
	}
	switch pos.ClassOf(err) {
	case pos.ClassPermanent:
		return false
	}
	return true
}

// probeLoop keeps Online true to the facts: while offline it probes every
// ProbeInterval; while online, when no call succeeded for IdleProbe.
func (e *Engine) probeLoop() {
	e.probe()
	t := time.NewTicker(e.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		hs := e.health.snapshot()
		if (!hs.online || e.clk.mono()-hs.okMono >= e.opts.IdleProbe) && !e.paused() {
			e.probe()
		}
	}
}

func (e *Engine) probe() {
	_, err := e.find(e.ctx, probeInvoiceNumber)
	if err != nil && !errors.Is(err, hesabe.ErrNotFound) && e.ctx.Err() == nil {
		e.log.Debug("gateway probe failed", "err", err)
	}
}
