package serial_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// decodeAll feeds b and returns every frame and every dropped candidate.
func decodeAll(d *serial.Decoder, b []byte) (frames []serial.Frame, bad int) {
	d.Write(b)
	for {
		f, err := d.Next()
		if errors.Is(err, serial.ErrNeedMore) {
			return frames, bad
		}
		if err != nil {
			bad++
			continue
		}
		frames = append(frames, f)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte{serial.STX}, 100), make([]byte, serial.MaxPayload)} {
		b := serial.AppendFrame(nil, serial.TypeData, 7, payload)
		if got, want := len(b), len(payload)+serial.Overhead; got != want {
			t.Fatalf("frame length %d, want %d", got, want)
		}
		var d serial.Decoder
		// Byte by byte: a frame may arrive in any number of reads.
		var frames []serial.Frame
		for i := range b {
			fs, bad := decodeAll(&d, b[i:i+1])
			if bad != 0 {
				t.Fatalf("bad frame at byte %d", i)
			}
			frames = append(frames, fs...)
		}
		if len(frames) != 1 || frames[0].Seq != 7 || frames[0].Type != serial.TypeData || !bytes.Equal(frames[0].Payload, payload) {
			t.Fatalf("decoded %+v", frames)
		}
	}
}

func TestDecoderResync(t *testing.T) {
	good := serial.AppendFrame(nil, serial.TypeData, 1, []byte(`{"v":1}`))
	corrupt := serial.AppendFrame(nil, serial.TypeData, 2, []byte(`{"v":2}`))
	corrupt[7] ^= 0x40
	stray := []byte{serial.STX, serial.TypeData, 9, 0x1f, 0xff} // announces 8191 bytes that never come
	ack := serial.AppendFrame(nil, serial.TypeAck, 1, nil)

	t.Run("GarbageAndCorrupt", func(t *testing.T) {
		var d serial.Decoder
		in := append(append(append(append([]byte("noise\x02\x02zz"), corrupt...), 0xff, 0x00), good...), ack...)
		frames, bad := decodeAll(&d, in)
		if bad != 1 {
			t.Errorf("bad = %d, want 1 (the corrupt frame)", bad)
		}
		if len(frames) != 2 || frames[0].Seq != 1 || frames[1].Type != serial.TypeAck {
			t.Fatalf("frames = %+v", frames)
		}
		if d.Stats.CRCErrors != 1 || d.Stats.SkippedBytes == 0 {
			t.Errorf("stats = %+v", d.Stats)
		}
	})
	t.Run("PartialThenExpire", func(t *testing.T) {
		var d serial.Decoder
		frames, _ := decodeAll(&d, append(append([]byte{}, stray...), good...))
		if len(frames) != 0 || !d.Pending() {
			t.Fatalf("a stray start should hold the frame behind it until it expires; got %d frames", len(frames))
		}
		d.Expire()
		frames, _ = decodeAll(&d, nil)
		if len(frames) != 1 || frames[0].Seq != 1 {
			t.Fatalf("after Expire: %+v", frames)
		}
		if d.Stats.Partial != 1 {
			t.Errorf("Partial = %d, want 1", d.Stats.Partial)
		}
	})
	t.Run("TruncatedFrame", func(t *testing.T) {
		var d serial.Decoder
		frames, _ := decodeAll(&d, good[:len(good)-3])
		if len(frames) != 0 {
			t.Fatal("a truncated frame decoded")
		}
		for d.Pending() {
			d.Expire()
			decodeAll(&d, nil)
		}
		frames, _ = decodeAll(&d, good)
		if len(frames) != 1 {
			t.Fatalf("frame after a truncated one: %d frames", len(frames))
		}
	})
}

// FuzzDecoder: whatever precedes it, a good frame is found once the
// garbage's pending frame starts expire, and the decoder never panics.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{serial.STX})
	f.Add([]byte{serial.STX, serial.TypeData, 0, 0x20, 0x00})
	f.Add(serial.AppendFrame(nil, serial.TypeData, 3, []byte(`{"v":1,"kind":"ping"}`)))
	f.Add(serial.AppendFrame(nil, serial.TypeNak, 3, nil)[:6])
	good := serial.AppendFrame(nil, serial.TypeData, 42, []byte(`{"v":1,"kind":"ack","id":"b1","terminal_id":"T","ref":"x"}`))
	f.Fuzz(func(t *testing.T, garbage []byte) {
		var d serial.Decoder
		frames, _ := decodeAll(&d, garbage)
		for _, fr := range frames {
			enc := serial.AppendFrame(nil, fr.Type, fr.Seq, fr.Payload)
			if !bytes.Contains(garbage, enc) {
				t.Fatalf("decoded a frame that is not in the input: %x", enc)
			}
		}
		d.Write(good)
		found := false
		for i := 0; i < len(garbage)+len(good)+2; i++ {
			fs, _ := decodeAll(&d, nil)
			for _, fr := range fs {
				if fr.Seq == 42 && fr.CRC != 0 && bytes.Equal(serial.AppendFrame(nil, fr.Type, fr.Seq, fr.Payload), good) {
					found = true
				}
			}
			if found || !d.Pending() {
				break
			}
			d.Expire()
		}
		if !found {
			t.Fatalf("good frame lost after %d bytes of garbage", len(garbage))
		}
	})
}

// TestFrameDocExample pins the example and the CRC check value given in
// docs/terminal-protocol.md.
func TestFrameDocExample(t *testing.T) {
	if got := crc32.ChecksumIEEE([]byte("123456789")); got != 0xCBF43926 {
		t.Fatalf("CRC-32 check value %#x", got)
	}
	b := serial.AppendFrame(nil, serial.TypeData, 7, []byte("{}"))
	want := []byte{0x02, 0x44, 0x07, 0x00, 0x02, 0x7B, 0x7D}
	want = binary.BigEndian.AppendUint32(want, crc32.ChecksumIEEE(want[1:]))
	if !bytes.Equal(b, want) {
		t.Fatalf("frame % x, want % x", b, want)
	}
}
