package serial

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Direction says which way a frame went.
type Direction string

// The frame directions.
const (
	In  Direction = "in"
	Out Direction = "out"
)

// Errors returned by Conn.Send.
var (
	// ErrNoAck: the far end never acknowledged the frame within the
	// retransmit budget. The link is probably dead.
	ErrNoAck = errors.New("serial: frame not acknowledged")
	// ErrClosed: the connection is closed (by Close or a port error).
	ErrClosed = errors.New("serial: connection closed")
	// ErrTooLarge: the payload does not fit one frame.
	ErrTooLarge = errors.New("serial: payload too large for a frame")
)

// ConnConfig tunes a Conn. The zero value works: every zero field takes its
// default.
type ConnConfig struct {
	// Baud is the line speed, used only to stretch the ACK timeout by the
	// time a frame takes on the wire. Default 115200.
	Baud int
	// AckTimeout is how long to wait for an ACK beyond the frame's own wire
	// time before sending it again. Default 300ms.
	AckTimeout time.Duration
	// MaxRetries is how many times a frame is resent before Send gives up
	// with ErrNoAck. Default 4 (5 attempts).
	MaxRetries int
	// StallTimeout: a frame that started but is not complete after this
	// long without a byte is abandoned. Default 500ms.
	StallTimeout time.Duration
	// OnData receives each new data payload, once, in order, on the
	// connection's reader goroutine. It must not block: hand the payload
	// to a queue. A resent frame (same seq and CRC as the last one) is
	// acknowledged again but not delivered again.
	OnData func(payload []byte)
	// Trace, if set, sees every frame sent or received (type 'D', 'A' or
	// 'N', the frame's length in bytes). It must not block.
	Trace func(dir Direction, typ byte, n int)
}

func (c *ConnConfig) setDefaults() {
	if c.Baud <= 0 {
		c.Baud = 115200
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 300 * time.Millisecond
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 4
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = 500 * time.Millisecond
	}
}

// WireTime is how long n bytes take on a line at baud with 8N1 framing
// (10 bits a byte).
func WireTime(n, baud int) time.Duration {
	return time.Duration(int64(n) * 10 * int64(time.Second) / int64(baud))
}

// ConnStats counts what happened on one connection.
type ConnStats struct {
	FramesIn, FramesOut uint64
	Retransmits         uint64
	Duplicates          uint64 // resent data frames acknowledged but not delivered again
	NaksIn, NaksOut     uint64
	Decoder             DecoderStats
}

// FrameErrors sums the errors a diagnostics page shows as "frame errors".
func (s ConnStats) FrameErrors() uint64 {
	return s.Decoder.CRCErrors + s.Decoder.Partial + s.NaksIn
}

// Conn is the link layer over one open port: frames, ACK/NAK, bounded
// retransmits and duplicate suppression. It is symmetric: the bridge and
// a terminal (or the simulator) run the same code at each end.
//
// Stop-and-wait: one data frame is outstanding per direction at a time, so
// Send calls are serialized. A Conn does not reopen its port; once the port
// fails it is done (see Done and Err) and the owner makes a new one.
type Conn struct {
	port io.ReadWriteCloser
	cfg  ConnConfig

	sendMu sync.Mutex // one outstanding data frame
	seq    byte       // next data seq; guarded by sendMu

	ctl   chan []byte // ACK/NAK frames to write, before data
	data  chan writeReq
	acks  chan Frame
	done  chan struct{}
	once  sync.Once
	errMu sync.Mutex
	err   error

	// readDone and writeDone close when readLoop and writeLoop end.
	readDone, writeDone chan struct{}
	// writing: writeLoop is inside port.Write, which may never return
	// (a far end that stopped reading; closing the port does not end a
	// blocked write). Guarded by wmu.
	wmu     sync.Mutex
	writing bool

	stats struct {
		framesIn, framesOut, retransmits, duplicates, naksIn, naksOut atomic.Uint64
	}
	decMu sync.Mutex
	dec   Decoder
}

type writeReq struct {
	b    []byte
	errc chan error
}

// NewConn starts a Conn on an open port. The Conn owns the port from now
// on and closes it in Close.
func NewConn(port io.ReadWriteCloser, cfg ConnConfig) *Conn {
	cfg.setDefaults()
	c := &Conn{
		port: port,
		cfg:  cfg,
		ctl:  make(chan []byte, 64),
		data: make(chan writeReq),
		acks: make(chan Frame, 8),
		done: make(chan struct{}),

		readDone:  make(chan struct{}),
		writeDone: make(chan struct{}),
	}
	go c.readLoop()
	go c.writeLoop()
	return c
}

// Done is closed when the connection has failed or was closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended (nil while it is up).
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// Close closes the port and waits for the connection's goroutines, except
// for a write to the port that is under way: one the far end never takes
// (it stopped reading) does not end when the port is closed, so Close
// leaves it behind; it ends when the far end reads or goes away, and
// nothing more is written after it.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	<-c.readDone
	c.wmu.Lock()
	writing := c.writing
	c.wmu.Unlock()
	if !writing {
		<-c.writeDone // it writes nothing more now that done is closed
	}
	return nil
}

func (c *Conn) fail(err error) {
	c.once.Do(func() {
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.done)
		c.port.Close() // unblocks the reader
	})
}

// Stats returns the connection's counters.
func (c *Conn) Stats() ConnStats {
	c.decMu.Lock()
	d := c.dec.Stats
	c.decMu.Unlock()
	return ConnStats{
		FramesIn:    c.stats.framesIn.Load(),
		FramesOut:   c.stats.framesOut.Load(),
		Retransmits: c.stats.retransmits.Load(),
		Duplicates:  c.stats.duplicates.Load(),
		NaksIn:      c.stats.naksIn.Load(),
		NaksOut:     c.stats.naksOut.Load(),
		Decoder:     d,
	}
}

// Send sends payload as one data frame and waits for its ACK, resending on
// NAK or timeout up to MaxRetries times. It returns nil once the far end's
// link layer has the frame, ErrNoAck when the budget is spent, ErrClosed
// when the connection ends, or ctx's error.
func (c *Conn) Send(ctx context.Context, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(payload), MaxPayload)
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	seq := c.seq
	c.seq++
	frame := AppendFrame(nil, TypeData, seq, payload)
	wait := c.cfg.AckTimeout + 2*WireTime(len(frame)+Overhead, c.cfg.Baud)
	// Forget ACKs left over from an earlier frame that timed out.
	for len(c.acks) > 0 {
		<-c.acks
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for attempt := 0; attempt <= c.cfg.MaxRetries; attempt++ {
		if attempt > 0 {
			c.stats.retransmits.Add(1)
		}
		if err := c.write(ctx, frame); err != nil {
			return err
		}
		timer.Reset(wait)
	waitAck:
		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-c.done:
				return fmt.Errorf("%w: %v", ErrClosed, c.Err())
			case <-timer.C:
				break waitAck
			case f := <-c.acks:
				if f.Seq != seq {
					continue // an ACK for an earlier frame
				}
				if f.Type == TypeAck {
					return nil
				}
				if !timer.Stop() {
					<-timer.C
				}
				break waitAck // NAK: resend at once
			}
		}
	}
	return fmt.Errorf("%w after %d attempts", ErrNoAck, c.cfg.MaxRetries+1)
}

func (c *Conn) write(ctx context.Context, frame []byte) error {
	req := writeReq{b: frame, errc: make(chan error, 1)}
	select {
	case c.data <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return fmt.Errorf("%w: %v", ErrClosed, c.Err())
	}
	select {
	case err := <-req.errc:
		return err
	case <-c.done:
		return fmt.Errorf("%w: %v", ErrClosed, c.Err())
	case <-ctx.Done():
		// The write is stuck (the far end stopped reading); it may
		// still go out later, which is harmless.
		return ctx.Err()
	}
}

// writeLoop owns the port's write side. Control frames go first so an ACK
// is never stuck behind a long data frame of ours.
func (c *Conn) writeLoop() {
	defer close(c.writeDone)
	for {
		select {
		case b := <-c.ctl:
			if !c.writeFrame(b) {
				return
			}
			continue
		default:
		}
		select {
		case <-c.done:
			return
		case b := <-c.ctl:
			if !c.writeFrame(b) {
				return
			}
		case req := <-c.data:
			ok := c.writeFrame(req.b)
			if !ok {
				req.errc <- fmt.Errorf("%w: %v", ErrClosed, c.Err())
				return
			}
			req.errc <- nil
		}
	}
}

func (c *Conn) writeFrame(b []byte) bool {
	c.wmu.Lock()
	select {
	case <-c.done:
		c.wmu.Unlock()
		return false
	default:
	}
	c.writing = true
	c.wmu.Unlock()
	_, err := c.port.Write(b)
	c.wmu.Lock()
	c.writing = false
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("serial write: %w", err))
		return false
	}
	c.stats.framesOut.Add(1)
	if c.cfg.Trace != nil {
		c.cfg.Trace(Out, b[1], len(b))
	}
	return true
}

func (c *Conn) sendCtl(typ, seq byte) {
	if typ == TypeNak {
		c.stats.naksOut.Add(1)
	}
	select {
	case c.ctl <- AppendFrame(make([]byte, 0, Overhead), typ, seq, nil):
	default:
		// The writer is far behind; the far end will resend and we will
		// answer then.
	}
}

// drain collects every complete frame and every dropped candidate
// buffered in the decoder. Called with decMu held.
func (c *Conn) drain(frames []Frame, bad []*FrameError) ([]Frame, []*FrameError) {
	for {
		f, err := c.dec.Next()
		if err == ErrNeedMore {
			return frames, bad
		}
		var fe *FrameError
		if errors.As(err, &fe) {
			bad = append(bad, fe)
			continue
		}
		frames = append(frames, f)
	}
}

func (c *Conn) readLoop() {
	defer close(c.readDone)
	buf := make([]byte, 4096)
	var (
		last     time.Time
		lastSeq  byte
		lastCRC  uint32
		haveLast bool
	)
	for {
		n, err := c.port.Read(buf)
		now := time.Now()
		var frames []Frame
		var bad []*FrameError
		c.decMu.Lock()
		if c.dec.Pending() && !last.IsZero() && now.Sub(last) > c.cfg.StallTimeout {
			// What is buffered is older than the stall timeout: a frame
			// whose sender stopped mid-way, or a stray STX announcing a
			// length that never came. Abandon frame starts one by one,
			// keeping any complete frame found behind them.
			for c.dec.Pending() {
				c.dec.Expire()
				frames, bad = c.drain(frames, bad)
			}
		}
		if n > 0 {
			last = now
			c.dec.Write(buf[:n])
			frames, bad = c.drain(frames, bad)
		}
		c.decMu.Unlock()
		for _, fe := range bad {
			if fe.Type == TypeData {
				c.sendCtl(TypeNak, fe.Seq)
			}
		}
		for _, f := range frames {
			c.stats.framesIn.Add(1)
			if c.cfg.Trace != nil {
				c.cfg.Trace(In, f.Type, len(f.Payload)+Overhead)
			}
			switch f.Type {
			case TypeData:
				c.sendCtl(TypeAck, f.Seq)
				if haveLast && f.Seq == lastSeq && f.CRC == lastCRC {
					c.stats.duplicates.Add(1)
					continue
				}
				haveLast, lastSeq, lastCRC = true, f.Seq, f.CRC
				if c.cfg.OnData != nil {
					c.cfg.OnData(f.Payload)
				}
			case TypeAck, TypeNak:
				if f.Type == TypeNak {
					c.stats.naksIn.Add(1)
				}
				select {
				case c.acks <- f:
				default: // nobody waiting that long; Send will time out and resend
				}
			}
		}
		if err != nil {
			c.fail(fmt.Errorf("serial read: %w", err))
			return
		}
		select {
		case <-c.done:
			return
		default:
		}
	}
}
