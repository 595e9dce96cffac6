package engine

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

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
// pauses every call to Hesabe for its Retry-After (Engine.pause).
type health struct {
	e            *Engine
	mu           sync.Mutex
	online       bool
	lastOK       time.Time
	lastErr      string
	offlineSince time.Time
}

func (h *health) init(e *Engine) {
	h.e = e
	h.online = true // until a call says otherwise; Open probes at once
}

func (h *health) snapshot() (online bool, lastOK time.Time, lastErr string, offlineSince time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.online, h.lastOK, h.lastErr, h.offlineSince
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
		h.ok()
	case ctx.Err() != nil:
		// Our own cancellation says nothing about the gateway.
	default:
		h.fail(err)
	}
}

func (h *health) ok() {
	h.mu.Lock()
	was := h.online
	h.online, h.lastOK, h.offlineSince = true, h.e.now(), time.Time{}
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
		h.lastErr = err.Error()
		h.mu.Unlock()
		if d := rateLimited(err); d > 0 {
			h.e.pause(d)
		}
		return
	}
	h.mu.Lock()
	was := h.online
	h.online, h.lastErr = false, err.Error()
	if was {
		h.offlineSince = h.e.now()
	}
	h.mu.Unlock()
	if was {
		h.e.log.Warn("gateway unreachable; storing checkouts within the offline limits", "err", err)
	}
}

// rateLimited is how long a 429 from Hesabe asks every call to wait: its
// Retry-After, and 1 s when it gives none; 0 for any other error.
func rateLimited(err error) time.Duration {
	var herr *hesabe.Error
	if errors.As(err, &herr) && herr.HTTPStatus == http.StatusTooManyRequests {
		return max(herr.RetryAfter, time.Second)
	}
	return 0
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
		online, lastOK, _, _ := e.health.snapshot()
		if (!online || e.now().Sub(lastOK) >= e.opts.IdleProbe) && !e.paused() {
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
