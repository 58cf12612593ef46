package mock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gavel-gw/gavel/adapters"
)

// Defaults applied by New to zero fields.
const (
	DefaultName        = "mock"
	DefaultErrorStatus = 500
	DefaultChunks      = 8
	// MaxChunks bounds Chunks: more only measures the consumer's loop, not gavel.
	MaxChunks = 10000
)

// Config shapes the mock's behaviour. Zero values mean "no latency, no failures,
// defaults for the rest", so an empty Config is a fast, always-successful upstream.
type Config struct {
	Name string `yaml:"-"`
	// Latency passes before the response, or before a stream is opened (the time to
	// first byte of a real upstream).
	Latency time.Duration `yaml:"latency"`
	// ErrorRate is the fraction of requests, in [0,1], that fail with ErrorStatus.
	ErrorRate float64 `yaml:"error_rate"`
	// ErrorStatus is the HTTP status an injected failure reports, 500 when zero.
	ErrorStatus int `yaml:"error_status"`
	// Chunks is the number of content chunks a streamed reply is cut into, 8 when zero.
	Chunks int `yaml:"chunks"`
	// ChunkInterval passes before each content chunk of a stream.
	ChunkInterval time.Duration `yaml:"chunk_interval"`
	// Reply is the reply text; when empty it is derived from the last user message.
	Reply string `yaml:"reply"`
	// Seed selects which requests fail; the same seed fails the same requests.
	Seed uint64 `yaml:"seed"`
}

// Validate reports every out-of-range field, joined. Zero values are valid: they select
// defaults.
func (c Config) Validate() error {
	var errs []error
	if math.IsNaN(c.ErrorRate) || c.ErrorRate < 0 || c.ErrorRate > 1 {
		errs = append(errs, fmt.Errorf("error_rate must be between 0 and 1, got %v", c.ErrorRate))
	}
	if c.ErrorStatus != 0 && (c.ErrorStatus < 400 || c.ErrorStatus > 599) {
		errs = append(errs, fmt.Errorf("error_status must be between 400 and 599, got %d", c.ErrorStatus))
	}
	if c.Chunks < 0 || c.Chunks > MaxChunks {
		errs = append(errs, fmt.Errorf("chunks must be between 1 and %d, got %d", MaxChunks, c.Chunks))
	}
	if c.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency must not be negative, got %v", c.Latency))
	}
	if c.ChunkInterval < 0 {
		errs = append(errs, fmt.Errorf("chunk_interval must not be negative, got %v", c.ChunkInterval))
	}
	// No name prefix: callers such as the registry validate before the name is set and
	// add their own context.
	return errors.Join(errs...)
}

// Provider is the mock upstream. It is safe for concurrent use.
type Provider struct {
	cfg       Config
	threshold uint64 // a request fails when its hash falls below this
	seq       atomic.Uint64
}

var _ adapters.Provider = (*Provider)(nil)

// New validates cfg, applies defaults and returns a Provider.
func New(cfg Config) (*Provider, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("mock provider %q: %w", cfg.Name, err)
	}
	if cfg.ErrorStatus == 0 {
		cfg.ErrorStatus = DefaultErrorStatus
	}
	if cfg.Chunks == 0 {
		cfg.Chunks = DefaultChunks
	}
	p := &Provider{cfg: cfg}
	switch {
	case cfg.ErrorRate >= 1:
		p.threshold = math.MaxUint64
	case cfg.ErrorRate > 0:
		p.threshold = uint64(cfg.ErrorRate * (1 << 64))
	}
	return p, nil
}

// Name returns the configured provider name.
func (p *Provider) Name() string { return p.cfg.Name }

// Chat answers after Latency, or fails as ErrorRate decides.
func (p *Provider) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	n := p.seq.Add(1)
	if err := p.wait(ctx, p.cfg.Latency); err != nil {
		return nil, err
	}
	if p.fails(n) {
		return nil, p.injectedFailure()
	}
	a := p.answer(req, n)

	// One allocation for the response and everything it points to: the mock is the
	// upstream in gateway benchmarks, where its own garbage would be counted as gavel's.
	r := new(struct {
		resp    adapters.ChatResponse
		choice  [1]adapters.Choice
		content adapters.Content
		call    [1]adapters.ToolCall
		usage   adapters.Usage
	})
	r.usage = a.usage
	msg := adapters.Message{Role: "assistant"}
	if a.toolName != "" {
		r.call[0] = adapters.ToolCall{ID: a.toolID, Type: "function",
			Function: adapters.FunctionCall{Name: a.toolName, Arguments: "{}"}}
		msg.ToolCalls = r.call[:]
	} else {
		r.content.Text = a.text
		msg.Content = &r.content
	}
	r.choice[0] = adapters.Choice{Index: 0, Message: msg, FinishReason: a.finish}
	r.resp = adapters.ChatResponse{
		ID:                a.id,
		Object:            adapters.ObjectChatCompletion,
		Created:           time.Now().Unix(),
		Model:             req.Model,
		Choices:           r.choice[:],
		Usage:             &r.usage,
		SystemFingerprint: systemFingerprint,
	}
	return &r.resp, nil
}

const systemFingerprint = "fp_mock"

// answer is what the mock replies to a request, before it is framed as a response or
// cut into chunks.
type answer struct {
	id       string
	text     string // reply text, when not calling a tool
	toolName string // function called, when calling a tool
	toolID   string
	finish   string
	usage    adapters.Usage
}

func (p *Provider) answer(req *adapters.ChatRequest, n uint64) answer {
	a := answer{id: "chatcmpl-mock-" + strconv.FormatUint(n, 10), finish: adapters.FinishStop}
	completionBytes := 0
	if name, ok := forcedTool(req); ok {
		a.toolName = name
		a.toolID = "call_mock_" + strconv.FormatUint(n, 10)
		a.finish = adapters.FinishToolCalls
		completionBytes = len(name) + len("{}")
	} else {
		a.text = p.replyText(req)
		if limit := maxTokens(req); limit > 0 && len(a.text) > limit*4 {
			a.text = truncate(a.text, limit*4)
			a.finish = adapters.FinishLength
		}
		completionBytes = len(a.text)
	}
	a.usage.PromptTokens = max(1, promptBytes(req)/4)
	a.usage.CompletionTokens = max(1, completionBytes/4)
	a.usage.TotalTokens = a.usage.PromptTokens + a.usage.CompletionTokens
	return a
}

// replyText is the configured reply, or a phrase chosen by a hash of the last user
// message: stable for a given prompt, different across prompts, and readable in logs.
func (p *Provider) replyText(req *adapters.ChatRequest) string {
	if p.cfg.Reply != "" {
		return p.cfg.Reply
	}
	h := uint64(fnvOffset)
	if m := lastUserMessage(req); m != nil {
		h = hashContent(h, m.Content)
	}
	var b strings.Builder
	b.Grow(len("mock reply from : ") + len(req.Model) + 6*8)
	b.WriteString("mock reply from ")
	b.WriteString(req.Model)
	b.WriteString(":")
	for i := 0; i < 6; i++ {
		b.WriteByte(' ')
		b.WriteString(words[h%uint64(len(words))])
		h /= uint64(len(words))
	}
	b.WriteByte('.')
	return b.String()
}

var words = [...]string{
	"amber", "basalt", "cedar", "delta", "ember", "fjord", "granite", "harbor",
	"indigo", "juniper", "kestrel", "lagoon", "meadow", "nimbus", "obsidian", "prairie",
	"quartz", "river", "sierra", "tundra", "umber", "valley", "willow", "xenon",
	"yarrow", "zephyr", "aurora", "boreal", "canyon", "dune", "estuary", "glacier",
}

func lastUserMessage(req *adapters.ChatRequest) *adapters.Message {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			return &req.Messages[i]
		}
	}
	if len(req.Messages) > 0 {
		return &req.Messages[len(req.Messages)-1]
	}
	return nil
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// hashContent is FNV-1a over a message's text, written out so that hashing allocates
// nothing (hash/fnv's value escapes through its interface).
func hashContent(h uint64, c *adapters.Content) uint64 {
	if c == nil {
		return h
	}
	if c.Parts == nil {
		return fnv(h, c.Text)
	}
	for _, part := range c.Parts {
		h = fnv(h, part.Text)
	}
	return h
}

func fnv(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// promptBytes is the text a tokenizer would see: message contents and tool-call
// arguments.
func promptBytes(req *adapters.ChatRequest) int {
	n := 0
	for i := range req.Messages {
		m := &req.Messages[i]
		if m.Content != nil {
			if m.Content.Parts == nil {
				n += len(m.Content.Text)
			}
			for _, part := range m.Content.Parts {
				n += len(part.Text)
			}
		}
		for _, tc := range m.ToolCalls {
			n += len(tc.Function.Name) + len(tc.Function.Arguments)
		}
	}
	return n
}

func maxTokens(req *adapters.ChatRequest) int {
	if req.MaxCompletionTokens != nil {
		return *req.MaxCompletionTokens
	}
	if req.MaxTokens != nil {
		return *req.MaxTokens
	}
	return 0
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// forcedTool reports the function a request obliges the model to call: the named one,
// or the first tool for "required". "auto" and "none" get a text reply, so tests choose
// tool calls explicitly.
func forcedTool(req *adapters.ChatRequest) (string, bool) {
	if len(req.Tools) == 0 {
		return "", false
	}
	raw := bytes.TrimSpace(req.ToolChoice)
	if len(raw) == 0 {
		return "", false
	}
	if raw[0] == '"' {
		if string(raw) == `"required"` {
			return req.Tools[0].Function.Name, true
		}
		return "", false
	}
	var choice struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &choice) != nil || choice.Function.Name == "" {
		return "", false
	}
	return choice.Function.Name, true
}

// fails decides from the request's sequence number alone, so a run with a given seed
// fails exactly the same requests as the last one.
func (p *Provider) fails(n uint64) bool {
	if p.threshold == 0 {
		return false
	}
	if p.threshold == math.MaxUint64 {
		return true
	}
	return splitmix64(p.cfg.Seed+n*0x9E3779B97F4A7C15) < p.threshold
}

// splitmix64 is the SplitMix64 finalizer: consecutive inputs give uncorrelated outputs.
func splitmix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

func (p *Provider) injectedFailure() *adapters.Error {
	return &adapters.Error{
		Provider: p.cfg.Name,
		Kind:     adapters.KindForStatus(p.cfg.ErrorStatus),
		Status:   p.cfg.ErrorStatus,
		Message:  "mock injected failure",
	}
}

// wait sleeps d unless ctx ends first. With d == 0 it only checks ctx, so the fast path
// arms no timer.
func (p *Provider) wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		if ctx.Err() != nil {
			return p.ctxError(ctx)
		}
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return p.ctxError(ctx)
	case <-t.C:
		return nil
	}
}

func (p *Provider) ctxError(ctx context.Context) *adapters.Error {
	kind := adapters.KindCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		kind = adapters.KindTimeout
	}
	return &adapters.Error{Provider: p.cfg.Name, Kind: kind, Err: context.Cause(ctx)}
}
