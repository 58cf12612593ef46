package remote

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/test/bundletest"
)

// A bomb from the bundle server is refused at the bound, counted once, and never
// downloaded or expanded again while the server keeps serving it; the active revision
// decides throughout, and the server's next good bundle (or the active one again) clears it.
func TestBombIsRejectedOnce(t *testing.T) {
	lim := policy.Limits{MaxCompressedBytes: 1 << 20, MaxExpandedBytes: 2 << 20, MaxFileBytes: 1 << 20}
	bomb := bundletest.Bomb(8, 1<<20) // 8 MiB expanded, every file within MaxFileBytes
	tests := []struct {
		name    string
		bomb    []byte
		noETag  bool
		message string
	}{
		{"expanded, with ETags", bomb, false, "max_expanded_bytes (2097152)"},
		{"expanded, without ETags", bomb, true, "max_expanded_bytes (2097152)"},
		{"one file", bundletest.Bomb(1, 2<<20), false, "max_file_bytes (1048576)"},
		{"compressed", randomTarball(t, 2<<20), false, "max_compressed_bytes (1048576)"},
		{"compressed, without ETags", randomTarball(t, 2<<20), true, "max_compressed_bytes (1048576)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := build(t, "r1", decisionRego("a"), nil, "")
			f := newFixture(t, good, func(c *Config) { c.Limits = lim })
			ctx := context.Background()
			if err := f.client.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			f.srv.mu.Lock()
			f.srv.noETag = tc.noETag
			f.srv.mu.Unlock()
			f.srv.set(tc.bomb)
			scansBefore := f.client.intake.scans.Load()
			for i := range 4 {
				if err := f.client.Poll(ctx); err == nil || !strings.Contains(err.Error(), tc.message) {
					t.Fatalf("poll %d: err = %v, want %q", i, err, tc.message)
				}
			}
			if f.revision() != "r1" {
				t.Fatalf("active revision %q, want r1", f.revision())
			}
			_, _, errs := f.rec.snapshot()
			if errs[ReasonTooLarge] != 1 || len(errs) != 1 {
				t.Errorf("errors = %v, want one too_large", errs)
			}
			// With ETags the bomb's body is sent once (the repeats are 304s); without, it
			// is sent again but recognised by its digest, never scanned again.
			f.srv.mu.Lock()
			bodies := f.srv.bodies
			f.srv.mu.Unlock()
			wantBodies := 2 // r1, then the bomb
			if tc.noETag {
				wantBodies = 5
			}
			if bodies != wantBodies {
				t.Errorf("bodies sent = %d, want %d", bodies, wantBodies)
			}
			wantScans := int64(1)
			if strings.HasPrefix(tc.message, "max_compressed") {
				wantScans = 0 // refused before the scan, on its size
			}
			if n := f.client.intake.scans.Load() - scansBefore; n != wantScans {
				t.Errorf("bomb scanned %d times, want %d", n, wantScans)
			}
			h := f.client.Health()
			if h.NotReady != "" || h.LastErrorReason != ReasonTooLarge || !strings.Contains(h.LastError, tc.message) {
				t.Errorf("health = %+v", h)
			}
			if st := f.client.Status(); st.ActiveRevision != "r1" || st.Code == "" || !strings.Contains(st.Message, tc.message) {
				t.Errorf("status = %+v", st)
			}

			// The server goes back to the active bundle: the error clears.
			f.srv.set(good)
			if err := f.client.Poll(ctx); err != nil {
				t.Fatalf("poll after the bomb was replaced: %v", err)
			}
			if h := f.client.Health(); h.LastError != "" || f.revision() != "r1" {
				t.Errorf("after the server reverted: health %+v, revision %s", h, f.revision())
			}
			// ... and a new good one activates.
			f.srv.set(build(t, "r2", decisionRego("b"), nil, ""))
			if err := f.client.Poll(ctx); err != nil || f.revision() != "r2" {
				t.Fatalf("new bundle after the bomb: %v, revision %s", err, f.revision())
			}
		})
	}
}

// randomTarball is a gzipped tar that does not compress: about size bytes on the wire.
func randomTarball(t testing.TB, size int) []byte {
	t.Helper()
	body := make([]byte, size)
	rand.Read(body)
	var buf bytes.Buffer
	gz, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "/gavel/noise.bin", Mode: 0o644, Size: int64(size), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}
