package testutil

import (
	"bytes"
	"os"
	"testing"
)

// GarblePageHolding overwrites the element headers of the file's page
// that holds needle (the first 16 of a bbolt leaf page's), as a write
// the disk lost or garbled would: bbolt can no longer read that page.
func GarblePageHolding(t *testing.T, path string, needle []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(raw, needle)
	if at < 0 {
		t.Fatalf("%q is not in %s", needle, path)
	}
	page := at / os.Getpagesize() * os.Getpagesize()
	for i := page + 16; i < page+16+256; i++ {
		raw[i] = 0xff
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}
