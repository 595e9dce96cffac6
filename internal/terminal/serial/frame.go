package serial

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/posbridge/posbridge/internal/terminal/protocol"
)

// Frame layout (all integers big-endian):
//
//	STX(0x02) | type(1) | seq(1) | len(2) | payload(len) | crc32(4)
//
// type is 'D' (data), 'A' (ack) or 'N' (nak); ack and nak carry no payload
// and echo the seq of the data frame they answer. crc32 is IEEE 802.3 (the
// one in zlib, java.util.zip.CRC32) over type, seq, len and payload.
const (
	STX = 0x02

	TypeData byte = 'D'
	TypeAck  byte = 'A'
	TypeNak  byte = 'N'

	headerLen = 5
	crcLen    = 4
	// Overhead is the bytes a frame adds to its payload.
	Overhead = headerLen + crcLen
	// MaxPayload is the largest payload a frame carries.
	MaxPayload = protocol.MaxMessageSize
)

// Frame is one decoded frame.
type Frame struct {
	Type    byte
	Seq     byte
	Payload []byte
	// CRC is the frame's checksum, used to tell a resent frame from a new
	// one with the same seq.
	CRC uint32
}

// AppendFrame appends the encoded frame to dst.
func AppendFrame(dst []byte, typ, seq byte, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, STX, typ, seq, 0, 0)
	binary.BigEndian.PutUint16(dst[start+3:], uint16(len(payload)))
	dst = append(dst, payload...)
	sum := crc32.ChecksumIEEE(dst[start+1:])
	return binary.BigEndian.AppendUint32(dst, sum)
}

// ErrNeedMore is returned by Decoder.Next when no complete frame is buffered.
var ErrNeedMore = errors.New("need more bytes")

// FrameError reports a frame candidate the decoder dropped. The decoder has
// already moved past it; call Next again.
type FrameError struct {
	// Reason is "crc", "header" or "partial".
	Reason string
	// Type and Seq are the header's values when a CRC failed (the header
	// may itself be corrupt), so the receiver can NAK that seq.
	Type byte
	Seq  byte
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("bad frame (%s)", e.Reason)
}

// DecoderStats counts what the decoder dropped.
type DecoderStats struct {
	Frames       uint64 // good frames
	SkippedBytes uint64 // bytes outside any frame (line noise, garbage)
	CRCErrors    uint64 // complete frames whose checksum failed
	Partial      uint64 // frame starts abandoned by Expire
}

// Decoder turns a byte stream into frames. It never loses sync for long: on
// a bad header or CRC it drops only the STX it started from and scans on,
// so a good frame right after garbage or a broken frame is still found.
// Not safe for concurrent use.
type Decoder struct {
	buf   []byte
	off   int
	Stats DecoderStats
}

// Write buffers stream bytes. It never fails.
func (d *Decoder) Write(p []byte) (int, error) {
	if d.off > 0 && d.off >= len(d.buf)/2 {
		n := copy(d.buf, d.buf[d.off:])
		d.buf = d.buf[:n]
		d.off = 0
	}
	d.buf = append(d.buf, p...)
	return len(p), nil
}

// Pending reports whether a frame has started but is not complete yet.
func (d *Decoder) Pending() bool { return d.off < len(d.buf) }

// Expire abandons a frame that started but never completed (the sender
// vanished mid-frame, or a stray STX in line noise announced a long
// length): it drops that STX and lets the next Next scan what follows.
func (d *Decoder) Expire() {
	if d.off < len(d.buf) {
		d.off++
		d.Stats.Partial++
	}
}

// Reset forgets everything buffered (after the port was reopened).
func (d *Decoder) Reset() {
	d.buf = d.buf[:0]
	d.off = 0
}

// Next returns the next complete frame, ErrNeedMore, or a *FrameError for a
// dropped candidate. The returned payload is a copy the caller may keep.
func (d *Decoder) Next() (Frame, error) {
	for {
		// Skip to the next STX.
		rest := d.buf[d.off:]
		i := bytes.IndexByte(rest, STX)
		if i < 0 {
			d.Stats.SkippedBytes += uint64(len(rest))
			d.off = len(d.buf)
			return Frame{}, ErrNeedMore
		}
		d.Stats.SkippedBytes += uint64(i)
		d.off += i
		rest = d.buf[d.off:]
		if len(rest) < headerLen {
			return Frame{}, ErrNeedMore
		}
		typ, seq := rest[1], rest[2]
		n := int(binary.BigEndian.Uint16(rest[3:5]))
		okHeader := (typ == TypeData && n <= MaxPayload) || ((typ == TypeAck || typ == TypeNak) && n == 0)
		if !okHeader {
			// Not a frame start: a stray STX. Skip it silently (it is
			// counted as a skipped byte) and scan on.
			d.off++
			d.Stats.SkippedBytes++
			continue
		}
		total := headerLen + n + crcLen
		if len(rest) < total {
			return Frame{}, ErrNeedMore
		}
		want := binary.BigEndian.Uint32(rest[headerLen+n:])
		got := crc32.ChecksumIEEE(rest[1 : headerLen+n])
		if got != want {
			d.off++
			d.Stats.CRCErrors++
			return Frame{}, &FrameError{Reason: "crc", Type: typ, Seq: seq}
		}
		f := Frame{Type: typ, Seq: seq, CRC: got}
		if n > 0 {
			f.Payload = append([]byte(nil), rest[headerLen:headerLen+n]...)
		}
		d.off += total
		d.Stats.Frames++
		return f, nil
	}
}
