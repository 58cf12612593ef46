package server

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/internal/reqtest"
)

func TestValidate(t *testing.T) {
	user := `{"role": "user", "content": "hi"}`
	// body builds a request around the given messages and extra top-level fields.
	body := func(messages, extra string) string {
		if extra != "" {
			extra = ", " + extra
		}
		return `{"model": "m", "messages": [` + messages + `]` + extra + `}`
	}
	tests := []struct {
		name  string
		body  string
		code  string // "" accepts
		param string
	}{
		{"no model", `{"messages": [` + user + `]}`, "missing_required_parameter", "model"},
		{"empty model", `{"model": "", "messages": [` + user + `]}`, "missing_required_parameter", "model"},
		{"no messages", `{"model": "m"}`, "missing_required_parameter", "messages"},
		{"empty messages", body("", ""), "missing_required_parameter", "messages"},
		{"bad role", body(user+`, {"role": "bot", "content": "x"}`, ""), "invalid_value", "messages[1].role"},
		{"empty role", body(`{"content": "x"}`, ""), "invalid_value", "messages[0].role"},
		// The index is rendered by a hand-written itoa: a two-digit index proves it.
		{"bad role at index 12", body(strings.Repeat(user+", ", 12)+`{"role": "User", "content": "x"}`, ""), "invalid_value", "messages[12].role"},
		{"tool without tool_call_id", body(user+`, {"role": "tool", "content": "{}"}`, ""), "missing_required_parameter", "messages[1].tool_call_id"},
		{"user without content", body(`{"role": "user"}`, ""), "missing_required_parameter", "messages[0].content"},
		{"user with null content", body(`{"role": "user", "content": null}`, ""), "missing_required_parameter", "messages[0].content"},
		{"tool with null content", body(`{"role": "tool", "tool_call_id": "c1", "content": null}`, ""), "missing_required_parameter", "messages[0].content"},
		{"max_tokens 0", body(user, `"max_tokens": 0`), "invalid_value", "max_tokens"},
		{"max_tokens negative", body(user, `"max_tokens": -5`), "invalid_value", "max_tokens"},
		{"max_completion_tokens 0", body(user, `"max_completion_tokens": 0`), "invalid_value", "max_completion_tokens"},
		{"temperature above 2", body(user, `"temperature": 2.01`), "invalid_value", "temperature"},
		{"temperature negative", body(user, `"temperature": -0.1`), "invalid_value", "temperature"},
		{"top_p above 1", body(user, `"top_p": 1.5`), "invalid_value", "top_p"},
		{"top_p negative", body(user, `"top_p": -1`), "invalid_value", "top_p"},
		{"n 0", body(user, `"n": 0`), "invalid_value", "n"},
		{"n 129", body(user, `"n": 129`), "invalid_value", "n"},
		{"tool not a function", body(user, `"tools": [{"type": "retrieval", "function": {"name": "f"}}]`), "invalid_value", "tools[0]"},
		{"tool without name", body(user, `"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {}}]`), "invalid_value", "tools[1]"},

		// Boundaries and shapes that must pass: rejecting them would break real clients.
		{"minimal", body(user, ""), "", ""},
		{"every role", body(`{"role": "system", "content": "s"}, {"role": "developer", "content": "d"}, {"role": "user", "content": "u"},
			{"role": "assistant", "content": "a"}, {"role": "tool", "tool_call_id": "c", "content": "t"}, {"role": "function", "name": "f", "content": "r"}`, ""), "", ""},
		{"assistant with null content and tool calls", body(`{"role": "assistant", "content": null, "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}`, ""), "", ""},
		{"assistant prefill without content", body(user+`, {"role": "assistant"}`, ""), "", ""},
		{"empty string content", body(`{"role": "user", "content": ""}`, ""), "", ""},
		{"empty parts", body(`{"role": "user", "content": []}`, ""), "", ""},
		{"limits at the edges", body(user, `"max_tokens": 1, "max_completion_tokens": 1, "temperature": 0, "top_p": 0, "n": 1`), "", ""},
		{"upper limits", body(user, `"temperature": 2, "top_p": 1, "n": 128`), "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := validate(reqtest.Chat(t, tc.body))
			if tc.code == "" {
				if e != nil {
					t.Fatalf("rejected: %+v", e)
				}
				return
			}
			if e == nil {
				t.Fatalf("accepted, want %s on %s", tc.code, tc.param)
			}
			if e.Status != http.StatusBadRequest || e.Type != "invalid_request_error" || e.Code != tc.code || e.Param != tc.param {
				t.Errorf("got %d %s %s %q, want 400 invalid_request_error %s %q", e.Status, e.Type, e.Code, e.Param, tc.code, tc.param)
			}
			if e.Message == "" {
				t.Error("empty message: clients show it to developers")
			}
		})
	}

	// The realistic bodies: good ones pass, bad_* ones fail in decode or validate.
	reqs := reqtest.Bodies(t)
	for _, name := range slices.Sorted(maps.Keys(reqs)) {
		raw := reqs[name]
		t.Run("testdata/"+name, func(t *testing.T) {
			req := &adapters.ChatRequest{}
			err := unmarshal(raw, req)
			var e *APIError
			if err == nil {
				e = validate(req)
			}
			bad := strings.HasPrefix(name, "bad_")
			switch {
			case bad && err == nil && e == nil:
				t.Error("accepted a bad body")
			case !bad && err != nil:
				t.Errorf("unmarshal: %v", err)
			case !bad && e != nil:
				t.Errorf("rejected: %+v", e)
			}
		})
	}
}
