package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/gavel-gw/gavel/adapters"
)

// expressible are the extra fields (adapters.ChatRequest.ExtraNames) the Messages API has
// a place for: top_k; safety_identifier as metadata.user_id; cache_control on a content
// part or a message, as the cache_control of the block (a message's: its last block).
var expressible = map[string]bool{
	"top_k":             true,
	"safety_identifier": true,
	adapters.MessageFieldPrefix + "cache_control": true,
	adapters.PartFieldPrefix + "cache_control":    true,
}

// UnsupportedFields names the request's extra fields the Messages API cannot express; the
// gateway refuses or drops them (drop_params) before the request reaches Chat.
func (p *Provider) UnsupportedFields(req *adapters.ChatRequest) []string {
	return unsupported(req)
}

func unsupported(req *adapters.ChatRequest) []string {
	if !req.HasExtra() {
		return nil
	}
	var out []string
	for _, name := range req.ExtraNames() {
		if !expressible[name] {
			out = append(out, name)
		}
	}
	return out
}

// translateExtra maps the top-level extra fields the Messages API can express. One it
// cannot is refused here too, so that no caller of the adapter loses a field silently.
func translateExtra(req *adapters.ChatRequest, out *messagesRequest) error {
	if names := unsupported(req); len(names) > 0 {
		return badRequest("the Anthropic Messages API cannot express %s", adapters.QuoteNames(names))
	}
	if raw, ok := req.Extra.Get("top_k"); ok && !isNull(raw) {
		k, err := strconv.Atoi(string(bytes.TrimSpace(raw)))
		if err != nil || k < 0 {
			return badRequest("top_k must be a non-negative integer")
		}
		out.TopK = &k
	}
	if raw, ok := req.Extra.Get("safety_identifier"); ok && !isNull(raw) {
		// OpenAI's successor of `user`, for the same purpose as Anthropic's user_id.
		var id string
		if json.Unmarshal(raw, &id) != nil {
			return badRequest("safety_identifier must be a string")
		}
		if id != "" {
			out.Metadata = &wireMetadata{UserID: id}
		}
	}
	return nil
}

// setCache copies a content part's (or a message's) cache_control onto its block.
func setCache(b *wireBlock, extra adapters.Fields) error {
	raw, ok := extra.Get("cache_control")
	if !ok || isNull(raw) {
		return nil
	}
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		return errors.New("cache_control must be an object such as {\"type\":\"ephemeral\"}")
	}
	b.CacheControl = raw
	return nil
}

// cacheLast applies a message's cache_control to its last block: a breakpoint at the end
// of the message, which is what marking the message means.
func cacheLast(blocks []wireBlock, extra adapters.Fields) error {
	if len(extra) == 0 || len(blocks) == 0 {
		return nil
	}
	return setCache(&blocks[len(blocks)-1], extra)
}

func isNull(raw []byte) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }
