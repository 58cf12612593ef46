package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/gavel-gw/gavel/test/bundletest"
)

// tarEntry is one file of a test tarball.
type tarEntry struct {
	name string
	body []byte
}

// tarGz writes a gzipped tar of small files (bombs come from bundletest.Bomb).
func tarGz(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// countingReader counts what was read through it: proof a reader stopped early.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestLimitReader(t *testing.T) {
	tooBig := errors.New("too big")
	tests := []struct {
		name     string
		size, n  int64
		wantErr  bool
		wantRead int64 // at most, from the source
	}{
		{"under", 10, 20, false, 10},
		{"exactly at the bound", 20, 20, false, 20},
		{"one past", 21, 20, true, 21},
		{"far past", 1 << 20, 20, true, 21},
		{"zero bound", 5, 0, true, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReader{r: io.LimitReader(zeros{}, tc.size)}
			got, err := io.ReadAll(&limitReader{r: src, n: tc.n, err: tooBig})
			if tc.wantErr != errors.Is(err, tooBig) || (!tc.wantErr && err != nil) {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if int64(len(got)) > tc.n {
				t.Errorf("passed on %d bytes, bound %d", len(got), tc.n)
			}
			if src.n > tc.wantRead {
				t.Errorf("read %d bytes from the source, want at most %d (stop at the first byte past the bound)", src.n, tc.wantRead)
			}
		})
	}
}

const testRego = "package gavel\n\ndecision := {\"allow\": true}\n"

func TestScanTarball(t *testing.T) {
	small := Limits{MaxCompressedBytes: 64 << 10, MaxExpandedBytes: 1 << 20, MaxFileBytes: 512 << 10}
	ok := tarGz(t, tarEntry{name: "/data.json", body: []byte(`{"gavel":{}}`)}, tarEntry{name: "/gavel/p.rego", body: []byte(testRego)})
	hs := newHMACVerification()
	tests := []struct {
		name     string
		tarball  []byte
		lim      Limits
		vc       *bundle.VerificationConfig
		want     string // error substring; "" for success
		maxRead  int64  // compressed bytes the scan may read; 0: no bound checked
		tooLarge bool
	}{
		{"fits", ok, small, nil, "", 0, false},
		{"defaults", ok, Limits{}, nil, "", 0, false},
		{"compressed over", tarGz(t, tarEntry{name: "/big.bin", body: randomBytes(128 << 10)}), small, nil, "max_compressed_bytes (65536)", 64<<10 + 1, true},
		{"one file over, by its header", bundletest.Bomb(1, 600<<10), small, nil, "file /gavel/d0000.json exceeds max_file_bytes (524288)", 0, true},
		// 8 × 256 KiB: each file fits, together they do not.
		{"all files together over", bundletest.Bomb(8, 256<<10), small, nil, "max_expanded_bytes (1048576)", 0, true},
		{"not gzip", []byte("<html>oops</html>"), small, nil, "archive read failed", 0, false},
		{"signature required, none", ok, small, hs, "bundle missing .signatures.json file", 0, false},
		{"signature does not verify", tarGz(t, tarEntry{name: "/data.json", body: []byte(`{}`)},
			tarEntry{name: "/.signatures.json", body: []byte(`{"signatures":["eyJhbGciOiJIUzI1NiJ9.e30.AAAA"]}`)}), small, hs, "signature", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := &countingReader{r: bytes.NewReader(tc.tarball)}
			err := ScanTarball(src, tc.lim, tc.vc)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("scan: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.tooLarge != errors.Is(err, ErrBundleTooLarge) {
				t.Errorf("errors.Is(%v, ErrBundleTooLarge) = %v", err, !tc.tooLarge)
			}
			if tc.maxRead > 0 && src.n > tc.maxRead {
				t.Errorf("read %d compressed bytes, want at most %d", src.n, tc.maxRead)
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	var x uint32 = 2463534242
	for i := range b { // xorshift: incompressible enough, and reproducible
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func newHMACVerification() *bundle.VerificationConfig {
	return bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{"default": {Key: "secret", Algorithm: "HS256"}}, "default", "", nil)
}

// A local tarball that expands past the bound is refused once the bound is crossed: the
// reader stops early and the heap never holds the expansion.
func TestLoadPathStopsAtTheBound(t *testing.T) {
	bomb := bundletest.Bomb(16, 1<<20) // 16 MiB of zeros in about 16 KiB
	p := filepath.Join(t.TempDir(), "bomb.tar.gz")
	if err := os.WriteFile(p, bomb, 0o644); err != nil {
		t.Fatal(err)
	}
	lim := Limits{MaxExpandedBytes: 2 << 20, MaxFileBytes: 1 << 20}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := LoadPathLimited(p, lim)
	runtime.ReadMemStats(&after)
	var le *LimitError
	if !errors.As(err, &le) || le.What != "expanded" || !strings.Contains(err.Error(), p) {
		t.Fatalf("err = %v, want the expanded bound, naming the file", err)
	}
	// Everything allocated while loading: gzip and tar buffers, not the 16 MiB (nor the
	// 2 MiB bound: what is scanned is discarded).
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("loading the bomb allocated %d bytes, want < 2 MiB", alloc)
	}

	// The compressed bound is checked on the file's size before it is opened for reading.
	if _, err := LoadPathLimited(p, Limits{MaxCompressedBytes: int64(len(bomb)) - 1}); !errors.Is(err, ErrBundleTooLarge) {
		t.Errorf("compressed bound: err = %v", err)
	}
	// A tarball within the bounds loads, as before.
	okPath := filepath.Join(t.TempDir(), "ok.tar.gz")
	if err := os.WriteFile(okPath, tarGz(t, tarEntry{name: "/gavel/p.rego", body: []byte(testRego)}), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := LoadPathLimited(okPath, lim); err != nil || len(b.Modules) != 1 {
		t.Errorf("within bounds: %v", err)
	}
}

// ReadTarballLimited holds OPA's reader to the same bounds and verifies like it.
func TestReadTarballLimited(t *testing.T) {
	ok := tarGz(t, tarEntry{name: "/gavel/p.rego", body: []byte(testRego)})
	if b, err := ReadTarballLimited(ok, "", Limits{}, nil, nil); err != nil || len(b.Modules) != 1 {
		t.Fatalf("read: %v", err)
	}
	if _, err := ReadTarballLimited(ok, "", Limits{MaxCompressedBytes: 10}, nil, nil); !errors.Is(err, ErrBundleTooLarge) {
		t.Errorf("compressed bound: %v", err)
	}
	if _, err := ReadTarballLimited(ok, "", Limits{}, newHMACVerification(), nil); err == nil || !strings.Contains(err.Error(), "signatures") {
		t.Errorf("unsigned with a key configured: %v", err)
	}
}
