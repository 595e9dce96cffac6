package serial_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/terminal/serial"
)

// The worked frames in docs/terminal-protocol.md §3.1, byte for byte: a
// terminal developer checks an encoder against them.
func TestDocExampleFrames(t *testing.T) {
	for _, tc := range []struct {
		name    string
		typ     byte
		seq     byte
		payload string
		hex     string
	}{
		{"data seq 7 {}", serial.TypeData, 7, `{}`, "02 44 07 00 02 7B 7D 76 D0 4C 1B"},
		{"ack seq 7", serial.TypeAck, 7, "", "02 41 07 00 00 07 A3 F6 C1"},
		{"nak seq 7", serial.TypeNak, 7, "", "02 4E 07 00 00 5F C0 E6 97"},
		{"ping seq 0", serial.TypeData, 0, `{"v":1,"kind":"ping","id":"b3f9a21c-4","terminal_id":"T-A99-0001"}`,
			"02 44 00 00 42 7B 22 76 22 3A 31 2C 22 6B 69 6E 64 22 3A 22 70 69 6E 67 22 2C 22 69 64 22 3A 22 " +
				"62 33 66 39 61 32 31 63 2D 34 22 2C 22 74 65 72 6D 69 6E 61 6C 5F 69 64 22 3A 22 54 2D 41 39 39 " +
				"2D 30 30 30 31 22 7D 25 63 59 0E"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, err := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
			if err != nil {
				t.Fatal(err)
			}
			var p []byte
			if tc.payload != "" {
				p = []byte(tc.payload)
			}
			if got := serial.AppendFrame(nil, tc.typ, tc.seq, p); !bytes.Equal(got, want) {
				t.Errorf("frame\n got % X\nwant % X", got, want)
			}
			var d serial.Decoder
			d.Write(want)
			f, err := d.Next()
			if err != nil || f.Type != tc.typ || f.Seq != tc.seq || string(f.Payload) != tc.payload {
				t.Errorf("decoded %c seq %d %q, err %v", f.Type, f.Seq, f.Payload, err)
			}
		})
	}
}
