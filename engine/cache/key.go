package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/gavel-gw/gavel/adapters"
)

// Key names an entry: the scope whose callers share it ("team:search", "global"), the
// target the request was meant for ("openai/gpt-4o") and the hash of what goes upstream.
type Key struct {
	Scope string
	Model string
	Hash  string // hex SHA-256
}

// String is the key as L1 and L2 store it. Scope and model come first so that a purge by
// scope or model can match a prefix.
func (k Key) String() string { return k.Scope + "|" + k.Model + "|" + k.Hash }

// ScopeID is the scope part of a key for a decision's scope and the caller's record:
// "key:<key id>", "team:<team>", "project:<project>" or "global".
func ScopeID(scope, keyID, team, project string) string {
	switch scope {
	case "key":
		return "key:" + keyID
	case "project":
		return "project:" + project
	case "global":
		return "global"
	default:
		return "team:" + team
	}
}

// RequestKey hashes a chat request as it goes upstream (redacted by the executor's
// Prepare), for target: the model is the target's, and what does not change the answer
// (stream, stream_options, user, metadata, store) is left out; stream is hashed on its own,
// since a streamed entry holds chunks and a buffered one a completion. maxTokens is the
// decision's cap on max_tokens (0: none), which does change the answer.
func RequestKey(scope, target string, req *adapters.ChatRequest, stream bool, maxTokens int) (Key, error) {
	r := *req
	r.Model, r.Stream, r.StreamOptions, r.User, r.Metadata, r.Store = target, false, nil, "", nil, nil
	b, err := r.MarshalWire()
	if err != nil {
		return Key{}, err
	}
	h := sha256.New()
	h.Write([]byte("gavel-cache-v1\x00"))
	if stream {
		h.Write([]byte{'s'})
	} else {
		h.Write([]byte{'b'})
	}
	h.Write([]byte(strconv.Itoa(maxTokens)))
	h.Write([]byte{0})
	h.Write(b)
	var sum [sha256.Size]byte
	return Key{Scope: scope, Model: target, Hash: hex.EncodeToString(h.Sum(sum[:0]))}, nil
}

// Filter selects entries for a purge; an empty field matches everything.
type Filter struct {
	Scope string // a scope id, as ScopeID makes it ("team:search")
	Model string // "provider/model"
}

// match reports whether the L1 key k is selected.
func (f Filter) match(k string) bool {
	scope, rest, _ := strings.Cut(k, "|")
	model, _, _ := strings.Cut(rest, "|")
	return (f.Scope == "" || f.Scope == scope) && (f.Model == "" || f.Model == model)
}
