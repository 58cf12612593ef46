package keys

import (
	"encoding/json"
	"io"
	"log/slog"
)

type jsonRaw = json.RawMessage

func slogTo(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }
