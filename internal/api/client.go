package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// Client is a Go client of the till API, used by the CLI (pay, checkouts,
// terminals), the load command and end-to-end tests. A till written in Go
// could use it as it is.
type Client struct {
	// URL is the API's base, e.g. http://127.0.0.1:8470.
	URL   string
	Token string
	HTTP  *http.Client
}

// CreateBody is the create request as a till sends it.
type CreateBody struct {
	TerminalID      string        `json:"terminal_id"`
	Amount          string        `json:"amount"`
	TillRef         string        `json:"till_ref,omitempty"`
	Description     string        `json:"description,omitempty"`
	Customer        *pos.Customer `json:"customer,omitempty"`
	DeadlineSeconds int64         `json:"deadline_seconds,omitempty"`
}

// APIError is an error answer of the till API.
type APIError struct {
	Status  int
	Code    pos.Code
	Field   string
	Message string
}

func (e *APIError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("HTTP %d %s: %s: %s", e.Status, e.Code, e.Field, e.Message)
	}
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Create asks for a checkout. existing is true for an idempotent replay.
func (c *Client) Create(ctx context.Context, key string, body CreateBody) (co pos.Checkout, existing bool, err error) {
	js, _ := json.Marshal(body)
	status, err := c.do(ctx, http.MethodPost, "/v1/checkouts", map[string]string{"Idempotency-Key": key}, js, &co)
	return co, status == http.StatusOK, err
}

// Get returns a checkout.
func (c *Client) Get(ctx context.Context, id string) (pos.Checkout, error) {
	var co pos.Checkout
	_, err := c.do(ctx, http.MethodGet, "/v1/checkouts/"+url.PathEscape(id), nil, nil, &co)
	return co, err
}

// Wait long-polls a checkout for a change after since (zero: after its
// current state), for up to wait.
func (c *Client) Wait(ctx context.Context, id string, since time.Time, wait time.Duration) (pos.Checkout, error) {
	q := url.Values{"wait": {strconv.FormatInt(int64(wait/time.Second), 10) + "s"}}
	if !since.IsZero() {
		q.Set("since", since.Format(time.RFC3339Nano))
	}
	var co pos.Checkout
	_, err := c.do(ctx, http.MethodGet, "/v1/checkouts/"+url.PathEscape(id)+"?"+q.Encode(), nil, nil, &co)
	return co, err
}

// Follow long-polls a checkout until it is final or ctx ends, calling
// onChange for every state it sees (including the first). A failed poll
// is retried every second (a bridge restarting), except an answer that
// asking again cannot change (a 4xx such as 401 or 404), which ends it.
func (c *Client) Follow(ctx context.Context, id string, onChange func(pos.Checkout)) (pos.Checkout, error) {
	co, err := c.Get(ctx, id)
	if err != nil {
		return co, err
	}
	onChange(co)
	for !co.State.Final() {
		next, err := c.Wait(ctx, id, co.UpdatedAt, 30*time.Second)
		if err != nil {
			if ctx.Err() != nil {
				return co, ctx.Err()
			}
			if final(err) {
				return co, err
			}
			// A restarting bridge: try again shortly.
			select {
			case <-ctx.Done():
				return co, ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		if next.UpdatedAt.After(co.UpdatedAt) || next.State != co.State {
			onChange(next)
		}
		co = next
	}
	return co, nil
}

// final reports whether err is an answer that asking again cannot change:
// a 4xx other than 408 (timeout) and 429 (too many requests), such as a
// refused token or a checkout that is not there.
func final(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 &&
		ae.Status != http.StatusRequestTimeout && ae.Status != http.StatusTooManyRequests
}

// Cancel asks to cancel a checkout.
func (c *Client) Cancel(ctx context.Context, id string) (pos.Checkout, error) {
	var co pos.Checkout
	_, err := c.do(ctx, http.MethodPost, "/v1/checkouts/"+url.PathEscape(id)+"/cancel", nil, nil, &co)
	return co, err
}

// Recent lists checkouts newest first.
func (c *Client) Recent(ctx context.Context, limit int, cursor string) ([]pos.Checkout, string, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var body struct {
		Checkouts  []pos.Checkout `json:"checkouts"`
		NextCursor string         `json:"next_cursor"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/checkouts?"+q.Encode(), nil, nil, &body)
	return body.Checkouts, body.NextCursor, err
}

// Terminals lists the bridge's terminals.
func (c *Client) Terminals(ctx context.Context) ([]TerminalInfo, error) {
	var body struct {
		Terminals []TerminalInfo `json:"terminals"`
	}
	_, err := c.do(ctx, http.MethodGet, "/v1/terminals", nil, nil, &body)
	return body.Terminals, err
}

// Status returns the bridge's status.
func (c *Client) Status(ctx context.Context) (EngineStatus, error) {
	var st EngineStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil, &st)
	return st, err
}

func (c *Client) do(ctx context.Context, method, path string, headers map[string]string, body []byte, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.URL, "/")+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("till API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("till API %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var eb errorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Field: eb.Error.Field, Message: eb.Error.Message}
		}
		return resp.StatusCode, &APIError{Status: resp.StatusCode, Code: pos.EInternal, Message: strings.TrimSpace(string(raw))}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("till API %s %s: decode: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// IsCode reports whether err is an API error with the given code.
func IsCode(err error, code pos.Code) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}
