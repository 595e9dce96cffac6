// Package logging builds posbridge's slog loggers: text on a console, JSON
// under a service manager, with secrets redacted twice over — attributes
// whose key names a secret are replaced, and any registered secret value is
// scrubbed from every string that reaches the log. Warnings and errors are
// also kept in a small ring for the diagnostics page.
package logging

import (
	"context"
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Redacted replaces a secret in logs.
const Redacted = "[redacted]"

// secretKeys are attribute keys whose values are never logged.
var secretKeys = []string{"password", "secret", "token", "access_code", "accesscode", "iv_key", "authorization", "api_key"}

// Redactor scrubs registered secret values from strings.
type Redactor struct {
	mu      sync.RWMutex
	secrets []string
}

// Add registers secret values (empty and very short ones are ignored: a
// 1–3 character "secret" would scrub ordinary text).
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 4 && !slices.Contains(r.secrets, s) {
			r.secrets = append(r.secrets, s)
		}
	}
}

// Scrub replaces every registered secret in s. It marks every byte that
// any secret covers, then replaces each covered run once: secrets that
// contain or overlap one another (Hesabe's sandbox IV key is the middle of
// its secret key) leave no piece of either, whatever order they were added
// in.
func (r *Redactor) Scrub(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	var covered []bool
	for _, sec := range r.secrets {
		for from := 0; from < len(s); {
			i := strings.Index(s[from:], sec)
			if i < 0 {
				break
			}
			if covered == nil {
				covered = make([]bool, len(s))
			}
			for k := from + i; k < from+i+len(sec); k++ {
				covered[k] = true
			}
			from += i + 1
		}
	}
	if covered == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(Redacted)
		for i < len(s) && covered[i] {
			i++
		}
	}
	return b.String()
}

// empty reports whether no secret is registered.
func (r *Redactor) empty() bool {
	if r == nil {
		return true
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.secrets) == 0
}

func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, s := range secretKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// Options configures New.
type Options struct {
	Level  slog.Level
	JSON   bool
	Redact *Redactor
	// Recent, if set, keeps WARN and ERROR records for diagnostics.
	Recent *Recent
}

// ParseLevel reads debug, info, warn or error.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("unknown log level %q (want debug, info, warn or error)", s)
	}
	return l, nil
}

// New returns a logger writing to w.
func New(w io.Writer, o Options) *slog.Logger {
	ho := &slog.HandlerOptions{Level: o.Level, ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
		return clean(a, o.Redact, o.JSON)
	}}
	var h slog.Handler
	if o.JSON {
		h = slog.NewJSONHandler(w, ho)
	} else {
		h = slog.NewTextHandler(w, ho)
	}
	if o.Recent != nil {
		h = &recentHandler{Handler: h, recent: o.Recent, redact: o.Redact}
	}
	return slog.New(&scrubMessage{Handler: h, redact: o.Redact})
}

// clean redacts one attribute: by its key, and by every registered secret
// in what the handler will write for its value. That is not always the
// value's String: the JSON handler writes a struct's fields and a []byte
// as base64, the text handler a []byte as text and a TextMarshaler's
// text. A value that shows a secret in any of these forms is replaced by
// its scrubbed text.
func clean(a slog.Attr, red *Redactor, asJSON bool) slog.Attr {
	if isSecretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); red.Scrub(s) != s {
			return slog.String(a.Key, red.Scrub(s))
		}
	case slog.KindAny:
		if red.empty() {
			break
		}
		r := render(a.Value.Any())
		for _, f := range []string{r.text, r.json, r.str} {
			if red.Scrub(f) != f {
				if asJSON {
					return slog.String(a.Key, red.Scrub(r.json))
				}
				return slog.String(a.Key, red.Scrub(r.text))
			}
		}
	}
	return a
}

// rendering is what a handler may write for a value: the text handler's
// form, the JSON handler's and fmt's %v.
type rendering struct{ text, json, str string }

func render(v any) rendering {
	switch v := v.(type) {
	case error:
		s := v.Error()
		return rendering{s, s, s}
	case []byte:
		s := string(v)
		return rendering{s, s, s}
	}
	r := rendering{text: fmt.Sprintf("%+v", v), str: fmt.Sprint(v)}
	if tm, ok := v.(encoding.TextMarshaler); ok {
		if b, err := tm.MarshalText(); err == nil {
			r.text = string(b)
		}
	}
	r.json = r.text
	if b, err := json.Marshal(v); err == nil {
		r.json = string(b)
	}
	return r
}

// scrubMessage scrubs secrets from the record's message too.
type scrubMessage struct {
	slog.Handler
	redact *Redactor
}

func (s *scrubMessage) Handle(ctx context.Context, r slog.Record) error {
	if s.redact != nil {
		if m := s.redact.Scrub(r.Message); m != r.Message {
			nr := slog.NewRecord(r.Time, r.Level, m, r.PC)
			r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
			r = nr
		}
	}
	return s.Handler.Handle(ctx, r)
}

func (s *scrubMessage) WithAttrs(as []slog.Attr) slog.Handler {
	return &scrubMessage{Handler: s.Handler.WithAttrs(as), redact: s.redact}
}

func (s *scrubMessage) WithGroup(n string) slog.Handler {
	return &scrubMessage{Handler: s.Handler.WithGroup(n), redact: s.redact}
}

// Entry is one kept warning or error.
type Entry struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
	Attrs   string    `json:"attrs,omitempty"`
}

// Recent is a ring of the last warnings and errors.
type Recent struct {
	mu    sync.Mutex
	ring  []Entry
	next  int
	full  bool
	count int64
}

// NewRecent keeps the last n entries.
func NewRecent(n int) *Recent { return &Recent{ring: make([]Entry, n)} }

func (r *Recent) add(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.next] = e
	r.next = (r.next + 1) % len(r.ring)
	r.full = r.full || r.next == 0
	r.count++
}

// Entries returns the kept entries, newest first.
func (r *Recent) Entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.ring)
	}
	out := make([]Entry, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}

// Count is the number of warnings and errors seen since start.
func (r *Recent) Count() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count
}

type recentHandler struct {
	slog.Handler
	recent *Recent
	redact *Redactor
	attrs  []groupedAttr
	group  string // the WithGroup names so far, each followed by "."
}

// groupedAttr is an attribute given to WithAttrs under the groups then open.
type groupedAttr struct {
	prefix string
	slog.Attr
}

func (h *recentHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var b strings.Builder
		var write func(prefix string, a slog.Attr)
		write = func(prefix string, a slog.Attr) {
			a.Value = a.Value.Resolve()
			if a.Value.Kind() == slog.KindGroup && !isSecretKey(a.Key) {
				p := prefix
				if a.Key != "" {
					p += a.Key + "."
				}
				for _, m := range a.Value.Group() {
					write(p, m)
				}
				return
			}
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			v := Redacted
			if !isSecretKey(a.Key) {
				v = a.Value.String()
				if a.Value.Kind() == slog.KindAny {
					v = render(a.Value.Any()).text
				}
			}
			fmt.Fprintf(&b, "%s%s=%s", prefix, a.Key, v)
		}
		for _, a := range h.attrs {
			write(a.prefix, a.Attr)
		}
		r.Attrs(func(a slog.Attr) bool { write(h.group, a); return true })
		h.recent.add(Entry{At: r.Time, Level: r.Level.String(), Message: h.redact.Scrub(r.Message), Attrs: h.redact.Scrub(b.String())})
	}
	return h.Handler.Handle(ctx, r)
}

func (h *recentHandler) WithAttrs(as []slog.Attr) slog.Handler {
	attrs := append([]groupedAttr{}, h.attrs...)
	for _, a := range as {
		attrs = append(attrs, groupedAttr{prefix: h.group, Attr: a})
	}
	return &recentHandler{Handler: h.Handler.WithAttrs(as), recent: h.recent, redact: h.redact, attrs: attrs, group: h.group}
}

func (h *recentHandler) WithGroup(n string) slog.Handler {
	return &recentHandler{Handler: h.Handler.WithGroup(n), recent: h.recent, redact: h.redact, attrs: h.attrs, group: h.group + n + "."}
}

// Wrap redacts records (message and attributes, by key and by registered
// value) before they reach h: for handlers New did not build, such as the
// Windows Event Log's.
func Wrap(h slog.Handler, red *Redactor) slog.Handler {
	return &scrubMessage{Handler: &redactAttrs{Handler: h, redact: red}, redact: red}
}

type redactAttrs struct {
	slog.Handler
	redact *Redactor
}

// clean redacts a for a handler whose format is unknown: a value that
// shows a secret in any rendering becomes its scrubbed text.
func (r *redactAttrs) clean(a slog.Attr) slog.Attr {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup && !isSecretKey(a.Key) {
		ms := a.Value.Group()
		out := make([]slog.Attr, len(ms))
		for i, m := range ms {
			out[i] = r.clean(m)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	return clean(a, r.redact, false)
}

func (r *redactAttrs) Handle(ctx context.Context, rec slog.Record) error {
	nr := slog.NewRecord(rec.Time, rec.Level, rec.Message, rec.PC)
	rec.Attrs(func(a slog.Attr) bool { nr.AddAttrs(r.clean(a)); return true })
	return r.Handler.Handle(ctx, nr)
}

func (r *redactAttrs) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = r.clean(a)
	}
	return &redactAttrs{Handler: r.Handler.WithAttrs(out), redact: r.redact}
}

func (r *redactAttrs) WithGroup(n string) slog.Handler {
	return &redactAttrs{Handler: r.Handler.WithGroup(n), redact: r.redact}
}

// Tee sends every record to each handler.
func Tee(hs ...slog.Handler) slog.Handler { return tee(hs) }

type tee []slog.Handler

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range t {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t tee) WithGroup(n string) slog.Handler {
	out := make(tee, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(n)
	}
	return out
}
