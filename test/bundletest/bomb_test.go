package bundletest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"
)

func TestBombIsATarball(t *testing.T) {
	b := Bomb(3, 1<<20)
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	n, total := 0, int64(0)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.Copy(io.Discard, tr)
		if c != h.Size {
			t.Fatalf("%s: %d of %d", h.Name, c, h.Size)
		}
		n++
		total += c
	}
	if n != 3 || total != 3<<20 || len(b) > 16<<10 {
		t.Errorf("files %d, expanded %d, compressed %d", n, total, len(b))
	}
}
