package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/posbridge/posbridge/internal/crypto"
	"github.com/posbridge/posbridge/internal/hesabe"
)

// Clock skew thresholds against the gateway's Date header. Hesabe's
// tokens and invoice expiries are time-based; TLS fails outright when the
// clock is far off.
const (
	skewWarn = 30 * time.Second
	skewFail = 5 * time.Minute
)

func (r *run) checkGateway(ctx context.Context) {
	raw := r.cfg.Hesabe.MerchantURL
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		r.add("gateway", Fail, fmt.Sprintf("hesabe.merchant_url %q is not a URL", raw), "set hesabe.merchant_url (production: https://merchantapi.hesabe.com/api)")
		return
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	skipRest := func(why string) {
		for _, n := range []string{"gateway.tcp", "gateway.tls", "clock", "gateway.login"} {
			r.add(n, Skip, why, "")
		}
	}
	if proxy, _ := http.ProxyFromEnvironment(&http.Request{URL: u}); proxy != nil {
		r.add("gateway.proxy", Warn, "requests go through the proxy "+proxy.Redacted()+"; DNS/TCP/TLS below test the direct path", "unset HTTPS_PROXY if the store has no proxy")
	}

	// DNS
	if net.ParseIP(host) != nil {
		r.add("gateway.dns", OK, host+" is an IP address", "")
	} else {
		dctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
		addrs, err := net.DefaultResolver.LookupHost(dctx, host)
		cancel()
		if err != nil {
			r.add("gateway.dns", Fail, fmt.Sprintf("cannot resolve %s: %v", host, err),
				"check the PC's DNS server and internet link (Linux: resolvectl status / cat /etc/resolv.conf; Windows: nslookup "+host+")")
			skipRest("the gateway's name does not resolve")
			return
		}
		r.add("gateway.dns", OK, fmt.Sprintf("%s → %s", host, strings.Join(addrs, ", ")), "")
	}

	// TCP
	addr := net.JoinHostPort(host, port)
	start := time.Now()
	conn, err := (&net.Dialer{Timeout: r.opt.Timeout}).DialContext(ctx, "tcp", addr)
	if err != nil {
		r.add("gateway.tcp", Fail, fmt.Sprintf("cannot connect to %s: %v", addr, cleanNetErr(err)),
			fmt.Sprintf("check the internet link and the firewall: outbound TCP %s to %s must be allowed", port, host))
		for _, n := range []string{"gateway.tls", "clock", "gateway.login"} {
			r.add(n, Skip, "the gateway is unreachable", "")
		}
		return
	}
	r.add("gateway.tcp", OK, fmt.Sprintf("connected to %s in %s", addr, time.Since(start).Round(100*time.Microsecond)), "")

	// TLS
	tlsFailed := false
	if u.Scheme == "https" {
		_ = conn.SetDeadline(time.Now().Add(r.opt.Timeout))
		tc := tls.Client(conn, &tls.Config{ServerName: host, Time: r.opt.Now})
		err := tc.HandshakeContext(ctx)
		if err != nil {
			fix := "a proxy or firewall may be intercepting TLS; check the network"
			var ue x509.UnknownAuthorityError
			var he x509.HostnameError
			var ie x509.CertificateInvalidError
			switch {
			case errors.As(err, &ie) && ie.Reason == x509.Expired:
				fix = "the certificate looks expired or not yet valid: check this PC's date and time"
			case errors.As(err, &ue):
				fix = "the certificate is not trusted: a TLS-inspecting proxy? Add its CA to the system store, or bypass it for " + host
			case errors.As(err, &he):
				fix = "the certificate is for another name: check hesabe.merchant_url, DNS or a captive portal"
			}
			r.add("gateway.tls", Fail, fmt.Sprintf("TLS handshake with %s failed: %v", host, err), fix)
			tlsFailed = true
		} else {
			st := tc.ConnectionState()
			r.add("gateway.tls", OK, fmt.Sprintf("%s, certificate for %s valid until %s", tls.VersionName(st.Version), host, st.PeerCertificates[0].NotAfter.Format("2006-01-02")), "")
		}
		tc.Close()
	} else {
		conn.Close()
		r.add("gateway.tls", Skip, "hesabe.merchant_url is http:// (a simulator); production uses https", "")
	}
	r.gatewayReachable = true
	r.checkClock(ctx, u, tlsFailed)
	if tlsFailed {
		// Every call would fail the same way: the login says nothing new.
		r.add("gateway.login", Skip, "the TLS handshake failed (see gateway.tls)", "")
		return
	}
	r.checkLogin(ctx)
}

func cleanNetErr(err error) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err
	}
	return err
}

// checkClock compares this PC's clock with the gateway's Date header.
// When the TLS handshake failed it reads the header without verifying
// the certificate: a clock far off is a common cause of that failure, and
// the time needs no trust to be compared.
func (r *run) checkClock(ctx context.Context, u *url.URL, unverified bool) {
	cctx, cancel := context.WithTimeout(ctx, r.opt.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodHead, u.Scheme+"://"+u.Host+"/", nil)
	if err != nil {
		r.add("clock", Skip, err.Error(), "")
		return
	}
	client := r.opt.HTTPClient
	if unverified {
		client = &http.Client{Timeout: r.opt.Timeout, Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // #nosec G402 -- only its Date header is read
		defer client.CloseIdleConnections()
	}
	sent := r.opt.Now()
	resp, err := client.Do(req)
	if err != nil {
		r.add("clock", Warn, fmt.Sprintf("could not read the gateway's time: %v", err), "check the PC's time by hand")
		return
	}
	resp.Body.Close()
	got := r.opt.Now()
	date, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		r.add("clock", Skip, "the gateway sent no Date header", "")
		return
	}
	// The header has whole seconds: compare with the request's midpoint.
	local := sent.Add(got.Sub(sent) / 2)
	skew := local.Sub(date)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	detail := fmt.Sprintf("this PC is %s %s the gateway", abs.Round(time.Second), dir)
	how := ""
	if unverified {
		how = " (its time read without verifying its certificate)"
	}
	detail += how
	const fix = "turn on time sync (Linux: timedatectl set-ntp true; Windows: w32tm /resync) and check the time zone"
	switch {
	case abs > skewFail:
		r.add("clock", Fail, detail, fix)
	case abs > skewWarn:
		r.add("clock", Warn, detail, fix)
	default:
		if abs < 2*time.Second {
			detail = "within a second or two of the gateway" + how
		}
		r.add("clock", OK, detail, "")
	}
}

// checkLogin logs in (the terminal list call does) and checks that every
// configured terminal is registered for this merchant.
func (r *run) checkLogin(ctx context.Context) {
	if err := r.cfg.RequireGateway(); err != nil {
		r.add("gateway.login", Skip, "the gateway account is incomplete (see config.complete)", "")
		return
	}
	hc := r.cfg.Hesabe.Client()
	hc.Timeout = 2 * r.opt.Timeout
	c, err := hesabe.New(hc)
	if err != nil {
		r.add("gateway.login", Fail, oneLine(err.Error()), "correct the hesabe section")
		return
	}
	terms, err := c.Terminals(ctx)
	if err != nil {
		var he *hesabe.Error
		detail, fix := oneLine(err.Error()), "check the hesabe section of the config"
		var syntax *json.SyntaxError
		if errors.As(err, &he) {
			switch {
			case he.Code == hesabe.CodeInvalidLogin || he.Op == "login" && he.HTTPStatus == http.StatusUnauthorized:
				detail = fmt.Sprintf("Hesabe refused the merchant login (code %d)", hesabe.CodeInvalidLogin)
				fix = "check hesabe.username/password (the merchant panel user posbridge logs in as)"
			case he.HTTPStatus >= 500:
				fix = fmt.Sprintf("Hesabe (or a proxy in front of it) answered HTTP %d: its own trouble, not the config; posbridge stores checkouts and sends them when it answers again. Run doctor again later; if it lasts, ask Hesabe", he.HTTPStatus)
			case he.HTTPStatus == http.StatusTooManyRequests:
				fix = "Hesabe is limiting how often this merchant calls it (HTTP 429), not the config: posbridge pauses by itself; wait a minute and run doctor again"
			case he.HTTPStatus == http.StatusUnauthorized:
				// The login went through (the client logs in again and
				// retries once on a 401): what Hesabe refuses is the
				// access code every other call carries.
				detail = fmt.Sprintf("Hesabe refused the access code (HTTP 401 on %s after a successful login)", he.Op)
				fix = "check hesabe.access_code (the merchant's access code for this merchant_url: sandbox and production differ)"
			case he.Code == hesabe.CodeInvalidMerchant:
				detail = fmt.Sprintf("Hesabe does not know this merchant (code %d)", he.Code)
				fix = "check hesabe.merchant_code and hesabe.access_code, and that merchant_url is production vs sandbox as intended"
			case he.HTTPStatus != 0 && (errors.Is(err, crypto.ErrBadPadding) || errors.As(err, &syntax)):
				// Hesabe answers a request it cannot decrypt with an
				// encrypted error; with a wrong key neither side can read
				// the other.
				detail = fmt.Sprintf("Hesabe's answer to %s could not be decrypted (HTTP %d): the keys do not match the merchant's", he.Op, he.HTTPStatus)
				fix = "check hesabe.secret_key and hesabe.iv_key (from the same merchant account and environment as access_code and merchant_url)"
			case he.Code == hesabe.CodeInvalidResponse || he.Code == hesabe.CodeInvalidRequestData:
				fix = "check hesabe.secret_key and hesabe.iv_key (the gateway could not decrypt the request, or we its answer)"
			case he.HTTPStatus == http.StatusNotFound:
				fix = "the gateway has no such address: check hesabe.merchant_url (production https://merchantapi.hesabe.com/api, sandbox https://merchantapisandbox.hesabe.com/api)"
			case he.HTTPStatus == 0:
				fix = "the gateway did not answer: check the internet link; posbridge queues checkouts while offline"
			}
		}
		r.add("gateway.login", Fail, detail, fix)
		return
	}
	r.add("gateway.login", OK, fmt.Sprintf("logged in as %s; merchant %s has %d terminal(s) at Hesabe", r.cfg.Hesabe.Username, r.cfg.Hesabe.MerchantCode, len(terms)), "")
	known := map[string]bool{}
	for _, t := range terms {
		known[t.TerminalID] = true
	}
	var missing []string
	for _, t := range r.cfg.Terminals {
		if !known[t.ID] {
			missing = append(missing, t.ID)
		}
	}
	if len(missing) > 0 {
		r.add("gateway.terminals", Fail, "not registered at Hesabe for this merchant: "+strings.Join(missing, ", "),
			"check terminals[].id against `posbridge hesabe terminals` (Hesabe's terminal_id)")
	} else if len(r.cfg.Terminals) > 0 {
		r.add("gateway.terminals", OK, "every configured terminal is registered at Hesabe", "")
	}
}
