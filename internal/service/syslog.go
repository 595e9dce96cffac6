package service

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	ksvc "github.com/kardianos/service"
)

// systemHandler writes slog records to a kardianos system logger (the
// Windows Event Log): one line per record, "message key=value ...".
type systemHandler struct {
	l     ksvc.Logger
	level slog.Leveler
	attrs string // pre-formatted " key=value" pairs from WithAttrs
	group string
}

func (h *systemHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *systemHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	b.WriteString(h.attrs)
	r.Attrs(func(a slog.Attr) bool { h.format(&b, a); return true })
	switch {
	case r.Level >= slog.LevelError:
		return h.l.Error(b.String())
	case r.Level >= slog.LevelWarn:
		return h.l.Warning(b.String())
	}
	return h.l.Info(b.String())
}

func (h *systemHandler) format(b *strings.Builder, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	k := a.Key
	if h.group != "" {
		k = h.group + "." + k
	}
	fmt.Fprintf(b, " %s=%v", k, a.Value.Resolve())
}

func (h *systemHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	var b strings.Builder
	b.WriteString(h.attrs)
	for _, a := range as {
		h.format(&b, a)
	}
	c.attrs = b.String()
	return &c
}

func (h *systemHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.group != "" {
		name = c.group + "." + name
	}
	c.group = name
	return &c
}

// teeHandler sends each record to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errA, errB error
	if t.a.Enabled(ctx, r.Level) {
		errA = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		errB = t.b.Handle(ctx, r)
	}
	if errA != nil {
		return errA
	}
	return errB
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(n string) slog.Handler {
	return teeHandler{t.a.WithGroup(n), t.b.WithGroup(n)}
}
