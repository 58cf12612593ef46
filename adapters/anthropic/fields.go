package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"
	"sort"
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

// inexpressible are the typed fields the Messages API has no place for: sampling controls
// it lacks (seed, penalties, logit_bias), logprobs, several choices, a response format
// (Anthropic's structured outputs are not mapped), OpenAI's storage and capacity options,
// metadata other than user_id, and image detail (Claude sizes images itself). user,
// parallel_tool_calls=false and reasoning_effort are mapped (translateRequest).
var inexpressible = []string{
	"frequency_penalty", "logit_bias", "logprobs", "metadata", "n", "presence_penalty",
	"response_format", "seed", "service_tier", "store", "top_logprobs", adapters.ImageDetailField,
}

// UnsupportedFields names the request's fields, extra (as ExtraNames names them) and typed
// (as adapters.ChatRequest.Sets names them), the Messages API cannot express; the gateway
// refuses or drops them (drop_params) before the request reaches Chat.
func (p *Provider) UnsupportedFields(req *adapters.ChatRequest) []string {
	return unsupported(req)
}

func unsupported(req *adapters.ChatRequest) []string {
	out := req.SetFields(inexpressible...)
	if req.Sets("reasoning_effort") && continuesToolUse(req) {
		// Extended thinking in a tool-use cycle needs the cycle's signed thinking blocks
		// sent back, which an OpenAI client does not keep: Anthropic would refuse the turn.
		out = append(out, "reasoning_effort")
	}
	if req.HasExtra() {
		for _, name := range req.ExtraNames() {
			if !expressible[name] {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}

// continuesToolUse reports whether the request answers tool calls the model made in the
// current turn: an assistant message with tool calls after the last user message.
func continuesToolUse(req *adapters.ChatRequest) bool {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		switch m := &req.Messages[i]; m.Role {
		case "user":
			return false
		case "assistant":
			if len(m.ToolCalls) > 0 {
				return true
			}
		}
	}
	return false
}

// refused is what translateRequest refuses of unsupported's list: what the gateway would
// have refused or dropped (advisory fields, whose loss changes nothing the client relies
// on, are left out of the translation without a word here; the gateway reports them).
func refused(req *adapters.ChatRequest) []string {
	var out []string
	for _, n := range unsupported(req) {
		if !adapters.Advisory(n) {
			out = append(out, n)
		}
	}
	return out
}

// translateExtra maps the top-level extra fields the Messages API can express. One it
// cannot is refused here too, so that no caller of the adapter loses a field silently.
func translateExtra(req *adapters.ChatRequest, out *messagesRequest) error {
	if names := refused(req); len(names) > 0 {
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

// thinkingConfig translates reasoning_effort into extended thinking: a budget from
// adapters.ReasoningBudgets ("none": no thinking), with max_tokens raised above it, as
// Anthropic requires, when the client's limit does not leave room for an answer. Thinking
// admits neither a changed temperature nor top_k nor a forced tool, and top_p only from
// 0.95: a request that sets them is refused rather than changed.
func thinkingConfig(req *adapters.ChatRequest, out *messagesRequest) error {
	effort := req.ReasoningEffort
	if effort == "" || effort == "none" {
		return nil
	}
	budget, ok := adapters.ReasoningBudgets[effort]
	if !ok {
		return badRequest("reasoning_effort %q is not one of none, minimal, low, medium, high, xhigh", effort)
	}
	switch {
	case out.Temperature != nil && *req.Temperature != 1:
		return badRequest("reasoning_effort (Anthropic extended thinking) cannot be combined with a temperature other than 1")
	case out.TopK != nil:
		return badRequest("reasoning_effort (Anthropic extended thinking) cannot be combined with top_k")
	case out.TopP != nil && *out.TopP < 0.95:
		return badRequest("reasoning_effort (Anthropic extended thinking) needs top_p of 0.95 or more")
	case out.ToolChoice != nil && (out.ToolChoice.Type == "any" || out.ToolChoice.Type == "tool"):
		return badRequest("reasoning_effort (Anthropic extended thinking) cannot be combined with a forced tool_choice")
	}
	out.Temperature = nil // 1 is the default, and the only value thinking accepts
	out.Thinking = &wireThinking{Type: "enabled", BudgetTokens: budget}
	if out.MaxTokens <= budget {
		// OpenAI counts reasoning in max_completion_tokens; the client's limit is kept for
		// the answer on top of the budget, so that thinking cannot consume all of it.
		out.MaxTokens += budget
	}
	return nil
}
