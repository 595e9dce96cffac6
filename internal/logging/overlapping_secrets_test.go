package logging_test

import (
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/logging"
)

// Hesabe's published sandbox keys: the IV key is the middle of the secret
// key. Scrubbing one secret must not leave pieces of another that contains
// or overlaps it, whatever order the secrets were registered in.
func TestScrubLeavesNoPieceOfOverlappingSecrets(t *testing.T) {
	const key, iv = "PkW64zMe5NVdrlPVNnjo2Jy9nOb7v1Xg", "5NVdrlPVNnjo2Jy9"
	for _, order := range [][]string{{key, iv}, {iv, key}} {
		red := &logging.Redactor{}
		red.Add(order...)
		got := red.Scrub("secret_key=" + key + " iv=" + iv)
		for _, piece := range []string{"PkW64zMe", "nOb7v1Xg", "5NVdrl"} {
			if strings.Contains(got, piece) {
				t.Errorf("registered %q first: %q keeps %q", order[0], got, piece)
			}
		}
	}
	// Two secrets that overlap without either containing the other.
	red := &logging.Redactor{}
	red.Add("abcdEFGH", "EFGHijkl")
	if got := red.Scrub("x abcdEFGHijkl y"); got != "x "+logging.Redacted+" y" {
		t.Errorf("overlapping secrets: %q", got)
	}
	if got := red.Scrub("nothing here"); got != "nothing here" {
		t.Errorf("clean text changed: %q", got)
	}
}
