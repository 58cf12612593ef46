package remote

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/gavel-gw/gavel/engine/policy"
)

// Files of the last known good bundle inside the persist directory.
const (
	tarballFile = "bundle.tar.gz"
	metaFile    = "bundle.json"
)

// meta describes the persisted tarball.
type meta struct {
	Revision string `json:"revision"`
	ETag     string `json:"etag,omitempty"`
	// URL is the bundle URL as shown (ShownURL): the file must not keep its credentials.
	URL          string    `json:"url"`
	DownloadedAt time.Time `json:"downloaded_at"`
	// SHA256 of the tarball: a crash between the two renames leaves a metadata file that
	// does not describe the tarball, and its ETag must then not be trusted.
	SHA256 string `json:"sha256"`
}

// ErrNothingPersisted means the persist directory holds no bundle for this URL.
var ErrNothingPersisted = errors.New("no persisted bundle")

// save writes the tarball, then its metadata, each atomically (temp file, fsync, rename),
// so a reader never sees a half-written bundle.
func save(dir string, raw []byte, m meta) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("persist dir: %w", err)
	}
	if err := writeAtomic(dir, tarballFile, raw); err != nil {
		return err
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(dir, metaFile, append(mb, '\n'))
}

func writeAtomic(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("persist %s: %w", name, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("persist %s: %w", name, err)
	}
	return nil
}

// LoadPersisted verifies and activates the last known good bundle for this URL, so a
// restart serves policy before (or without) the server answering. The revision's source
// is "persisted:<url>" (the URL as shown). ErrNothingPersisted: there is none.
func (c *Client) LoadPersisted(ctx context.Context) (*policy.Revision, error) {
	if c.cfg.PersistDir == "" {
		return nil, ErrNothingPersisted
	}
	raw, err := readBounded(filepath.Join(c.cfg.PersistDir, tarballFile), c.cfg.Limits.WithDefaults().MaxCompressedBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNothingPersisted
	}
	if err != nil {
		return nil, fmt.Errorf("persisted bundle: %w", err)
	}
	var m meta
	mb, err := os.ReadFile(filepath.Join(c.cfg.PersistDir, metaFile))
	if err == nil {
		err = json.Unmarshal(mb, &m)
	}
	if err != nil {
		return nil, fmt.Errorf("persisted bundle metadata: %w", err)
	}
	// Another server's policy is not this one's last known good. Credentials do not make
	// another server (and rotate: a pre-signed URL's signature expires), so the URLs are
	// compared as shown; a file written before URLs were masked holds the raw one.
	if m.URL != c.shown && m.URL != c.cfg.URL {
		return nil, fmt.Errorf("%w for %s (the persist dir holds %s's)", ErrNothingPersisted, c.shown, ShownURL(m.URL))
	}
	sum := sha256.Sum256(raw)
	if fmt.Sprintf("%x", sum) != m.SHA256 {
		m.ETag = ""
	}
	// Verified again: the directory is less trusted than the signature, and the key may
	// have been rotated since.
	b, err := c.readVerified(raw, m.ETag)
	if err != nil {
		return nil, c.fail(c.classify(err), fmt.Errorf("persisted bundle: %w", err))
	}
	rev, err := c.activate(ctx, b, "persisted:"+c.shown)
	if err != nil {
		return nil, c.fail(ReasonCompile, fmt.Errorf("persisted bundle: %w", err))
	}
	c.pollMu.Lock()
	c.dl.SetCache(m.ETag) // the first check can then be a 304
	c.pollMu.Unlock()
	c.mu.Lock()
	c.activeSum = sum
	c.persisted = m.DownloadedAt
	c.status.SetActivateSuccess(rev.ID)
	c.status.LastSuccessfulDownload = m.DownloadedAt
	c.status.SetBundleSize(len(raw))
	c.mu.Unlock()
	return rev, nil
}

// readBounded reads a file of at most limit bytes: the persist dir is less trusted than
// the signature, and a planted file must not be read whole into memory.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(raw)) > limit {
		return nil, &policy.LimitError{What: "compressed", Limit: limit}
	}
	return raw, nil
}
