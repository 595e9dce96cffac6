package gwhttp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/posbridge/posbridge/internal/gwhttp"
	"github.com/posbridge/posbridge/internal/simfault"
)

// TestBodySent checks, against a real server on 127.0.0.1, that with
// "Expect: 100-continue" the body only leaves once the server reads it.
func TestBodySent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		handler  http.HandlerFunc
		wantErr  bool
		wantSent bool
	}{
		{"AnswerWithoutReading", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusUnauthorized)
		}, false, false},
		{"ResetBeforeRead", func(w http.ResponseWriter, r *http.Request) {
			simfault.Reset(w)
		}, true, false},
		{"ReadThenReset", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			simfault.Reset(w)
		}, true, true},
		{"ReadThenAnswer", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.ReadAll(r.Body)
			w.WriteHeader(http.StatusCreated)
		}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			hc := &http.Client{Transport: gwhttp.NewTransport()}
			defer hc.CloseIdleConnections()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, body, err := gwhttp.NewRequest(ctx, http.MethodPost, srv.URL+"/x", []byte(`{"name":"x"}`), true)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Expect"); got != "100-continue" {
				t.Fatalf("Expect = %q", got)
			}
			if req.ContentLength != 12 || req.GetBody != nil {
				t.Fatalf("ContentLength %d, GetBody set %v", req.ContentLength, req.GetBody != nil)
			}
			resp, err := hc.Do(req)
			if err == nil {
				resp.Body.Close()
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("Do error = %v, want error %v", err, tc.wantErr)
			}
			if got := body.Sent(); got != tc.wantSent {
				t.Fatalf("Sent() = %v, want %v", got, tc.wantSent)
			}
		})
	}
}

func TestNoBody(t *testing.T) {
	req, body, err := gwhttp.NewRequest(context.Background(), http.MethodGet, "http://127.0.0.1:1/x", nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil || body.Sent() {
		t.Fatal("a request without a body has a Body that was sent")
	}
	if req.Header.Get("Expect") != "" {
		t.Fatal("Expect set on a request without a body")
	}
	req, body, err = gwhttp.NewRequest(context.Background(), http.MethodPost, "http://127.0.0.1:1/x", []byte("{}"), false)
	if err != nil {
		t.Fatal(err)
	}
	if req.Header.Get("Expect") != "" || body.Sent() {
		t.Fatal("Expect set without expectContinue, or body sent before Do")
	}
	if _, _, err := gwhttp.NewRequest(context.Background(), http.MethodPost, "://bad", []byte("{}"), true); err == nil {
		t.Fatal("bad URL accepted")
	}
}
