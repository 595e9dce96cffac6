package queue

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// ErrDamaged marks a database file whose pages bbolt cannot read (a
// write the disk lost or garbled: a power cut on a disk that acknowledged
// a flush it had not made, a failing SD card). bbolt panics on such a
// page; the store turns the panic into this error instead of letting the
// process crash, and from then on refuses every write (writing into a
// damaged file can spread the damage), while reads that do not meet the
// damage go on. See docs/queue.md, "A damaged file".
var ErrDamaged = errors.New("queue: the database file is damaged")

// damageError is ErrDamaged with what bbolt said and where.
type damageError struct {
	path  string
	what  string // the panic's value
	where string // the bbolt function that panicked
}

func (e *damageError) Error() string {
	return fmt.Sprintf("queue: the database file %s is damaged: bbolt could not read a page (%s in %s)", e.path, e.what, e.where)
}

func (e *damageError) Is(target error) bool { return target == ErrDamaged }

// Damaged returns the damage the store met (an error matching ErrDamaged),
// or nil while none was met.
func (s *Store) Damaged() error {
	if p := s.damaged.Load(); p != nil {
		return *p
	}
	return nil
}

// catchDamage, deferred around bbolt calls, turns a panic raised inside
// bbolt into an error matching ErrDamaged in *err, and records it: later
// writes are refused. A panic raised elsewhere (a bug of ours) goes on
// panicking: nothing says the file is at fault then.
func (s *Store) catchDamage(err *error) {
	r := recover()
	if r == nil {
		return
	}
	where := panicOrigin()
	if !strings.HasPrefix(where, "go.etcd.io/bbolt") {
		panic(r)
	}
	var d error = &damageError{path: s.path, what: fmt.Sprint(r), where: where}
	if s.damaged.CompareAndSwap(nil, &d) {
		s.opt.Logger.Error("queue: the database file is damaged; posbridge takes no new checkouts and writes nothing to it (docs/troubleshooting.md: \"database is damaged\")",
			"path", s.path, "panic", fmt.Sprint(r), "in", where)
	} else {
		d = *s.damaged.Load()
	}
	*err = d
}

// refuseDamaged is the error of a write once the file is known damaged.
func (s *Store) refuseDamaged() error {
	if d := s.Damaged(); d != nil {
		return fmt.Errorf("%w; nothing was written", d)
	}
	return nil
}

// panicOrigin names the function that raised the panic being recovered:
// the first frame below the runtime's panic machinery (the deferred
// function runs on top of the panicking stack).
func panicOrigin() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	inPanic := false
	for {
		f, more := frames.Next()
		switch {
		case strings.HasPrefix(f.Function, "runtime."):
			if f.Function == "runtime.gopanic" || strings.HasPrefix(f.Function, "runtime.panic") ||
				strings.HasPrefix(f.Function, "runtime.goPanic") || f.Function == "runtime.sigpanic" {
				inPanic = true
			}
		case inPanic:
			return f.Function
		}
		if !more {
			return "unknown"
		}
	}
}
