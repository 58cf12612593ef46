package policy

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/util"
)

// Bundle size defaults. gavel's own bundle is about 70 KB of Rego and JSON; a fleet's
// policy with a large price catalog is a few MB. The bounds leave two orders of magnitude
// of headroom while keeping the worst case a process must survive (OPA holds parsed data at
// several times its JSON size) far below a gateway's memory.
const (
	DefaultMaxCompressedBytes = 16 << 20 // the tarball as downloaded or read from disk
	DefaultMaxExpandedBytes   = 64 << 20 // all files of the tarball, decompressed
	DefaultMaxFileBytes       = 32 << 20 // any one file, decompressed
)

// Limits bound what reading one bundle tarball may cost. Zero fields take the defaults.
type Limits struct {
	MaxCompressedBytes int64
	MaxExpandedBytes   int64
	MaxFileBytes       int64
}

// WithDefaults fills zero fields with the package defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxCompressedBytes <= 0 {
		l.MaxCompressedBytes = DefaultMaxCompressedBytes
	}
	if l.MaxExpandedBytes <= 0 {
		l.MaxExpandedBytes = DefaultMaxExpandedBytes
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultMaxFileBytes
	}
	return l
}

// ErrBundleTooLarge is what every LimitError matches with errors.Is.
var ErrBundleTooLarge = errors.New("bundle too large")

// LimitError says which bound a bundle crossed. Reading stops at the first one.
type LimitError struct {
	What  string // "compressed", "expanded" or "file"
	File  string // the file, for What == "file"
	Limit int64
}

func (e *LimitError) Error() string {
	switch e.What {
	case "compressed":
		return fmt.Sprintf("bundle too large: the tarball exceeds max_compressed_bytes (%d)", e.Limit)
	case "file":
		return fmt.Sprintf("bundle too large: file %s exceeds max_file_bytes (%d) decompressed", e.File, e.Limit)
	}
	return fmt.Sprintf("bundle too large: its files exceed max_expanded_bytes (%d) decompressed", e.Limit)
}

func (e *LimitError) Is(target error) bool { return target == ErrBundleTooLarge }

// limitReader fails with err once more than n bytes were read through it, so a caller
// learns the bound was crossed (io.LimitReader would report a silent EOF) and stops.
type limitReader struct {
	r    io.Reader
	n    int64 // bytes still allowed
	read int64
	err  error
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return 0, l.err
	}
	// Ask for one byte past the bound: reaching it proves the bound was crossed
	// without reading on.
	if int64(len(p)) > l.n+1 {
		p = p[:l.n+1]
	}
	n, err := l.r.Read(p)
	l.read += int64(n)
	l.n -= int64(n)
	if l.n < 0 {
		return n + int(l.n), l.err
	}
	return n, err
}

// ScanTarball reads a bundle tarball once, decompressing and discarding as it goes, and
// fails at the first bound crossed: compressed size, any one file, or all files together.
// Memory stays constant whatever the tarball expands to (the signatures file aside, itself
// bounded by MaxFileBytes). With vc set, the bundle must carry a .signatures.json whose
// signature verifies; OPA's tarballs put it after the data and policies, so it is found
// by this pass, before anything is held in memory. The file digests it lists are checked
// by OPA's reader afterwards.
func ScanTarball(r io.Reader, lim Limits, vc *bundle.VerificationConfig) error {
	lim = lim.WithDefaults()
	compressed := &limitReader{r: r, n: lim.MaxCompressedBytes,
		err: &LimitError{What: "compressed", Limit: lim.MaxCompressedBytes}}
	gz, err := gzip.NewReader(compressed)
	if err != nil {
		return scanErr(fmt.Errorf("archive read failed: %w", err))
	}
	defer gz.Close()
	expanded := &limitReader{r: gz, n: lim.MaxExpandedBytes,
		err: &LimitError{What: "expanded", Limit: lim.MaxExpandedBytes}}
	tr := tar.NewReader(expanded)
	signed := false
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return scanErr(fmt.Errorf("archive read failed: %w", err))
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		// The header states the size and the tar reader holds the file to it, so a
		// file over the bound is refused before a byte of it is decompressed.
		if h.Size > lim.MaxFileBytes {
			return &LimitError{What: "file", File: h.Name, Limit: lim.MaxFileBytes}
		}
		if vc != nil && bundle.IsSignaturesFile(h.Name) {
			if signed {
				return errors.New("bundle contains multiple signatures files")
			}
			signed = true
			if err := verifySignatures(tr, vc); err != nil {
				return err
			}
			continue
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			return scanErr(fmt.Errorf("archive read failed: %w", err))
		}
	}
	if vc != nil && !signed {
		return errors.New("bundle missing .signatures.json file")
	}
	return nil
}

// scanErr surfaces a LimitError from under the gzip and tar readers' wrapping.
func scanErr(err error) error {
	var le *LimitError
	if errors.As(err, &le) {
		return le
	}
	return err
}

func verifySignatures(r io.Reader, vc *bundle.VerificationConfig) error {
	var sc bundle.SignaturesConfig
	if err := util.NewJSONDecoder(r).Decode(&sc); err != nil {
		return scanErr(fmt.Errorf("bundle load failed on signatures decode: %w", err))
	}
	if _, err := bundle.VerifyBundleSignature(sc, vc); err != nil {
		return err
	}
	return nil
}

// ReadTarballLimited reads a bundle tarball of at most lim's sizes: a first pass checks
// the bounds (and, with vc set, the signature) in constant memory; only then does OPA's
// reader expand it, with lim.MaxFileBytes as its own per-file bound. With vc nil, OPA's
// reader still refuses a signed bundle unless opts skips verification.
// baseURL prefixes the files' URLs, as OPA's downloader does; opts, when set, adds
// reader options (etag, bundle name).
func ReadTarballLimited(raw []byte, baseURL string, lim Limits, vc *bundle.VerificationConfig, opts func(*bundle.Reader) *bundle.Reader) (*bundle.Bundle, error) {
	lim = lim.WithDefaults()
	if int64(len(raw)) > lim.MaxCompressedBytes {
		return nil, &LimitError{What: "compressed", Limit: lim.MaxCompressedBytes}
	}
	if err := ScanTarball(bytes.NewReader(raw), lim, vc); err != nil {
		return nil, err
	}
	return readTarball(bytes.NewReader(raw), baseURL, lim, vc, opts)
}

func readTarball(r io.Reader, baseURL string, lim Limits, vc *bundle.VerificationConfig, opts func(*bundle.Reader) *bundle.Reader) (*bundle.Bundle, error) {
	loader := bundle.NewTarballLoaderWithBaseURL(r, baseURL).WithSizeLimitBytes(lim.MaxFileBytes)
	rd := bundle.NewCustomReader(loader).WithSizeLimitBytes(lim.MaxFileBytes).WithBundleVerificationConfig(vc)
	if opts != nil {
		rd = opts(rd)
	}
	b, err := rd.Read()
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// openTarball opens a local tarball, checks lim on it (compressed size first, by stat),
// and reads it without signature verification.
func openTarball(p string, lim Limits) (*bundle.Bundle, error) {
	lim = lim.WithDefaults()
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.Size() > lim.MaxCompressedBytes {
		return nil, &LimitError{What: "compressed", Limit: lim.MaxCompressedBytes}
	}
	if err := ScanTarball(f, lim, nil); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return readTarball(f, "", lim, nil, skipVerification)
}

// skipVerification reads a signed tarball without checking its signatures.
func skipVerification(r *bundle.Reader) *bundle.Reader { return r.WithSkipBundleVerification(true) }

// ReadCandidate reads an uploaded candidate bundle tarball held to lim, without checking
// signatures: a candidate is only replayed against logged decisions (the admin policy
// diff), never activated.
func ReadCandidate(raw []byte, lim Limits) (*bundle.Bundle, error) {
	return ReadTarballLimited(raw, "", lim, nil, skipVerification)
}
