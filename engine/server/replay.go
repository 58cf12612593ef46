package server

import (
	"context"
	"iter"

	"github.com/labstack/echo/v4"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/pipeline"
)

// chatEvents renders a stream's chunks as the Chat Completions events stream writes for
// them one by one, and the [DONE] that ends it: a streamed cache hit's answer, rendered
// once per entry (pipeline.Exchange.CachedStream) and replayed as these bytes.
func chatEvents(chunks iter.Seq[*adapters.ChatChunk]) ([]byte, error) {
	var b []byte
	var err error
	for c := range chunks {
		if b, err = c.AppendJSON(append(b, sseData...)); err != nil {
			return nil, err
		}
		b = append(b, sseEnd...)
	}
	return append(b, sseDone...), nil
}

// replayStream writes a streamed cache hit's rendered events: the spend is settled first
// (stream settles before [DONE]; here every byte goes out at once), then the bytes straight
// from the entry, a piece at a time under the stall bound like any stream's writes, the
// last piece left to net/http as a live stream's end is (sseWriter.close): a short replay
// is one write.
func (s *Server) replayStream(ctx context.Context, c echo.Context, x *pipeline.Exchange, b []byte) error {
	s.p.Settle(x)
	w := s.startSSE(c, ctx)
	for len(b) > 0 {
		n := min(len(b), answerPiece)
		if err := w.direct(b[:n], n < len(b)); err != nil {
			return s.writeFailed(err)
		}
		b = b[n:]
	}
	return nil
}

// direct writes encoded events from b as they are, without copying them into buf (b is
// an entry's shared bytes); flushed when flush is set.
func (w *sseWriter) direct(b []byte, flush bool) error {
	if err := w.write(b); err != nil || !flush {
		return err
	}
	return w.flush()
}
