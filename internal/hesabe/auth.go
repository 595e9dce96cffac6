package hesabe

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/posbridge/posbridge/internal/pos"
)

// tokenSource caches the merchant access token, renews it RefreshEarly
// before it expires, and lets one renewal run at a time: concurrent callers
// wait for it (or for their own context). A failed refresh falls back to a
// full login.
type tokenSource struct {
	c *Client

	mu       sync.Mutex
	access   string
	refresh  string
	expires  time.Time
	inflight chan struct{} // closed when the running renewal ends
	lastErr  error         // the running renewal's error, read after inflight closes
}

type tokenAnswer struct {
	Token struct {
		TokenType    string  `json:"token_type"`
		ExpiresIn    FlexInt `json:"expires_in"`
		AccessToken  string  `json:"access_token"`
		RefreshToken string  `json:"refresh_token"`
	} `json:"token"`
}

// get returns a valid access token other than refused (the token the
// gateway just refused, or ""): when the cached token is the refused one it
// is renewed, unless another caller already did.
func (t *tokenSource) get(ctx context.Context, refused string) (string, error) {
	t.mu.Lock()
	for {
		now := t.c.now()
		valid := t.access != "" && now.Add(t.c.cfg.RefreshEarly).Before(t.expires)
		if valid && t.access != refused {
			tok := t.access
			t.mu.Unlock()
			return tok, nil
		}
		if t.inflight == nil {
			break
		}
		wait := t.inflight
		t.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return "", &Error{Op: "login", Code: codeNone, Class: pos.ClassRetryable, Err: ctx.Err()}
		}
		t.mu.Lock()
		if t.lastErr != nil && t.inflight == nil {
			err := t.lastErr
			t.mu.Unlock()
			return "", err
		}
	}
	done := make(chan struct{})
	t.inflight = done
	refresh := t.refresh
	t.mu.Unlock()

	ans, err := t.renew(ctx, refresh)

	t.mu.Lock()
	defer t.mu.Unlock()
	t.inflight = nil
	t.lastErr = err
	close(done)
	if err != nil {
		t.access, t.refresh = "", ""
		return "", err
	}
	t.access = ans.Token.AccessToken
	t.refresh = ans.Token.RefreshToken
	life := time.Duration(ans.Token.ExpiresIn.Value) * time.Second
	if life <= 0 {
		life = 900 * time.Second
	}
	t.expires = t.c.now().Add(life)
	return t.access, nil
}

// renew refreshes with the refresh token when there is one, and falls back
// to a full login.
func (t *tokenSource) renew(ctx context.Context, refresh string) (tokenAnswer, error) {
	var ans tokenAnswer
	if refresh != "" {
		err := t.c.do(ctx, call{op: "token refresh", method: http.MethodPost, base: t.c.cfg.MerchantURL,
			path: "/v1/token-refresh", payload: map[string]string{"refreshToken": refresh}, plain: true, idempotent: true}, &ans)
		if err == nil && ans.Token.AccessToken != "" {
			return ans, nil
		}
		t.c.log.Info("hesabe token refresh failed; logging in", "err", err)
	}
	ans = tokenAnswer{}
	if err := t.c.do(ctx, call{op: "login", method: http.MethodPost, base: t.c.cfg.MerchantURL,
		path: "/v1/login", payload: loginWire{Username: t.c.cfg.Username, Password: t.c.cfg.Password},
		plain: true, idempotent: true}, &ans); err != nil {
		var herr *Error
		if errors.As(err, &herr) && (herr.HTTPStatus == http.StatusUnauthorized || herr.Code == CodeInvalidLogin) {
			herr.Class = pos.ClassPermanent // wrong username or password
		}
		return ans, err
	}
	if ans.Token.AccessToken == "" {
		return ans, &Error{Op: "login", HTTPStatus: http.StatusOK, Code: codeNone, Class: pos.ClassRetryable,
			Err: errors.New("answer has no access token")}
	}
	return ans, nil
}

type loginWire struct {
	Username string `json:"username"`
	Password string `json:"password"`
}
