package anthropic

import (
	"io"

	"github.com/gavel-gw/gavel/adapters/internal/httpx"
	"github.com/gavel-gw/gavel/adapters/internal/sse"
)

// The event splitter and the text sanitiser live in adapters/internal (and are tested
// there); these are the names this package's tests and fuzz targets use for them.
const (
	maxEvent       = sse.MaxEvent
	readBufferSize = sse.BufferSize
)

var isControl = httpx.IsControl

type sseReader struct{ *sse.Reader }

func getSSEReader(r io.Reader) sseReader  { return sseReader{sse.Get(r)} }
func putSSEReader(r sseReader)            { sse.Put(r.Reader) }
func (r sseReader) next() ([]byte, error) { return r.Next() }
