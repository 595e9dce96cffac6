package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/posbridge/posbridge/internal/httpserve"
	"github.com/posbridge/posbridge/internal/pos"
)

// errorBody is every error answer: {"error":{"code","field","message"}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    pos.Code `json:"code"`
	Field   string   `json:"field,omitempty"`
	Message string   `json:"message"`
}

// statusOf maps an application error code to its HTTP status. This table
// is part of the till API (docs/openapi.yaml).
func statusOf(code pos.Code) int {
	switch code {
	case pos.EInvalid:
		return http.StatusBadRequest
	case pos.EUnauthorized:
		return http.StatusUnauthorized
	case pos.ENotFound:
		return http.StatusNotFound
	case pos.EConflict:
		return http.StatusConflict
	case pos.ELimit:
		return http.StatusUnprocessableEntity
	case pos.EUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// errTooLarge marks a body over the limit (413).
var errTooLarge = errors.New("request body too large")

func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *pos.Error
	var ue *UnavailableError
	status := http.StatusInternalServerError
	detail := errorDetail{Code: pos.EInternal, Message: "internal error; see the posbridge log"}
	switch {
	case errors.As(err, &ue):
		status = http.StatusServiceUnavailable
		detail = errorDetail{Code: pos.EUnavailable, Message: ue.Message}
		w.Header().Set("Retry-After", ue.retryAfter())
	case errors.Is(err, errTooLarge):
		status = http.StatusRequestEntityTooLarge
		detail = errorDetail{Code: pos.EInvalid, Field: "body", Message: err.Error()}
	case errors.As(err, &e):
		status = statusOf(e.Code)
		detail = errorDetail{Code: e.Code, Field: e.Field, Message: e.Message}
		if e.Code == pos.EInternal {
			detail.Message = "internal error; see the posbridge log"
		}
	}
	writeJSON(w, status, errorBody{Error: detail})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// fail logs internal errors (the till sees only "internal error") and
// writes the answer.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() != nil && errors.Is(err, r.Context().Err()) {
		// The till hung up before its answer: not a fault of the bridge.
		msg := "till went away before its answer"
		if r.Method == http.MethodPost {
			msg += " (a create may have been stored: the till must retry it with the same Idempotency-Key)"
		}
		s.log.Warn(msg, "method", r.Method, "path", r.URL.Path, "err", err)
		return
	}
	var ue *UnavailableError
	switch {
	case errors.As(err, &ue):
		// A temporary condition of the bridge (a full disk): the till is
		// told to retry; the cause is for whoever frees the space.
		s.log.Warn("till API request refused for now", "method", r.Method, "path", r.URL.Path, "err", err)
	case pos.ErrorCode(err) == pos.EInternal && !errors.Is(err, errTooLarge):
		s.log.Error("till API request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, r, err)
}

// readBody checks the Content-Type and reads a JSON body of at most limit
// bytes; the error is ready for s.fail.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return nil, pos.FieldErrorf(pos.EInvalid, "Content-Type", "must be application/json")
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: at most %d bytes", errTooLarge, mbe.Limit)
		}
		return nil, pos.FieldErrorf(pos.EInvalid, "body", "could not read the body: %v", err)
	}
	if string(bytes.TrimSpace(body)) == "null" {
		// JSON null decodes as an empty object: the till would hear
		// that a field is required when no object was sent.
		return nil, pos.FieldErrorf(pos.EInvalid, "body", "must be a JSON object, not null")
	}
	return body, nil
}

func (s *Server) handleCreate(w http.ResponseWriter, r *http.Request) {
	if keys := r.Header.Values("Idempotency-Key"); len(keys) > 1 {
		s.fail(w, r, checkKey(keys, "payment attempt"))
		return
	}
	body, err := s.readBody(w, r, s.opts.MaxBodyBytes)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	req, err := DecodeCreate(body, r.Header.Get("Idempotency-Key"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, existing, err := s.engine.Create(r.Context(), req)
	if err != nil {
		s.fail(w, r, renameField(err, createFields))
		return
	}
	w.Header().Set("Location", "/v1/checkouts/"+c.ID)
	status := http.StatusAccepted
	if existing {
		status = http.StatusOK
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, status, c)
}

// createFields and submitFields map the engine's and the store's names
// of a field to what the till sent: the engine speaks of the request's
// Deadline and its idempotency_key; the till sent deadline_seconds and
// the Idempotency-Key header (which is what a missing or malformed key is
// reported as).
var (
	createFields = map[string]string{"deadline": "deadline_seconds", "idempotency_key": "Idempotency-Key"}
	submitFields = map[string]string{"idempotency_key": "Idempotency-Key"}
)

// renameField returns err with its field renamed by names, if it is a
// *pos.Error about one of them.
func renameField(err error, names map[string]string) error {
	var pe *pos.Error
	if errors.As(err, &pe) {
		if f, ok := names[pe.Field]; ok {
			return &pos.Error{Code: pe.Code, Field: f, Message: pe.Message}
		}
	}
	return err
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	q := r.URL.Query()
	waitStr := q.Get("wait")
	if waitStr == "" {
		c, err := s.engine.Get(r.Context(), id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, c)
		return
	}
	wait, err := time.ParseDuration(waitStr)
	if err != nil || wait < 0 {
		if n, aerr := strconv.ParseInt(waitStr, 10, 64); aerr == nil && n >= 0 {
			// In seconds, bounded before it is multiplied: n*time.Second
			// wraps around for huge n (to -1 s for the largest).
			wait, err = time.Duration(min(n, int64(s.opts.MaxWait/time.Second)))*time.Second, nil
		} else {
			s.fail(w, r, pos.FieldErrorf(pos.EInvalid, "wait", "must be a duration like 30s (or seconds)"))
			return
		}
	}
	wait = min(wait, s.opts.MaxWait)
	var since time.Time
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			s.fail(w, r, pos.FieldErrorf(pos.EInvalid, "since", "must be an RFC 3339 time (the checkout's updated_at)"))
			return
		}
	}
	// A final checkout never changes again: answer at once, whatever
	// since says (a till that passes the updated_at it saw last would
	// otherwise wait the whole wait for nothing).
	cur, err := s.engine.Get(r.Context(), id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if cur.State.Final() {
		writeJSON(w, http.StatusOK, cur)
		return
	}
	if since.IsZero() {
		since = cur.UpdatedAt
	}
	ctx, cancel := context.WithTimeout(r.Context(), wait)
	defer cancel()
	ctx, stop := s.withStop(ctx)
	defer stop()
	c, err := s.engine.Wait(ctx, id, since)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// withStop ends ctx when the server closes. The goroutine ends with ctx.
func (s *Server) withStop(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-s.Stopping():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	c, err := s.engine.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// listBody is the answer of GET /v1/checkouts.
type listBody struct {
	Checkouts  []pos.Checkout `json:"checkouts"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

// listLimit reads the limit query parameter (default 50, 1..500).
func listLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 500 {
		return 0, pos.FieldErrorf(pos.EInvalid, "limit", "must be an integer from 1 to 500")
	}
	return n, nil
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	limit, err := listLimit(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	list, next, err := s.engine.Recent(r.Context(), limit, r.URL.Query().Get("cursor"))
	if err != nil {
		if pos.ErrorCode(err) == pos.EInvalid {
			// The store's only complaint is the cursor; say so.
			err = renameField(err, map[string]string{"": "cursor"})
		}
		s.fail(w, r, err)
		return
	}
	if list == nil {
		list = []pos.Checkout{}
	}
	writeJSON(w, http.StatusOK, listBody{Checkouts: list, NextCursor: next})
}

func (s *Server) handleTerminals(w http.ResponseWriter, r *http.Request) {
	list := []TerminalInfo{}
	if s.terms != nil {
		list = append(list, s.terms.List()...)
	}
	writeJSON(w, http.StatusOK, map[string]any{"terminals": list})
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.engine.Status())
}

// handleEvents streams checkout changes as Server-Sent Events:
//
//	event: checkout
//	id: <checkout id>/<updated_at>
//	data: {checkout JSON}
//
// with a comment line every 15 s to keep proxies from closing the stream.
// The engine drops changes a subscriber does not take in time; when that
// may have happened the stream ends with overflowEvent, so the till
// re-reads what it follows instead of waiting for a change it missed.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	events, cancel := s.engine.Subscribe()
	defer cancel()
	err := httpserve.Stream(w, r, events, func(w io.Writer, c pos.Checkout) error {
		js, _ := json.Marshal(c)
		_, err := fmt.Fprintf(w, "event: checkout\nid: %s/%s\ndata: %s\n\n", c.ID, c.UpdatedAt.Format(time.RFC3339Nano), js)
		return err
	}, httpserve.StreamOptions{Comment: "posbridge checkout events", Stop: s.Stopping(), Overflow: func(w io.Writer) error {
		_, err := io.WriteString(w, overflowEvent)
		return err
	}})
	if err != nil {
		s.fail(w, r, err)
	}
}

// overflowEvent ends an event stream that fell behind.
const overflowEvent = "event: overflow\n" +
	`data: {"message":"this stream fell behind and checkout events were dropped; GET the checkouts you follow, then reconnect"}` + "\n\n"
