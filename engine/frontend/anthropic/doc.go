// Package anthropic is gavel's Anthropic Messages API front end: the wire types of
// POST /v1/messages and /v1/messages/count_tokens as clients (the Anthropic SDKs, Claude
// Code) send them, their translation to the canonical chat request the pipeline and the
// policy work on, and the encoding of a canonical answer, whole or streamed, back into
// Anthropic's message and its server-sent events.
//
// When the chosen target speaks the Messages API itself, the server passes the client's
// body through instead (adapters.Passthrough) and relays the upstream's answer as it
// came; this package's encoding serves the other targets (OpenAI, Gemini, the mock), whose
// answers are canonical. What such a translation loses is listed in docs/agents.md:
// thinking and redacted_thinking blocks and their signatures, cache_control, top_k,
// server tools, citations, and document blocks other than plain text and PDF.
//
// The HTTP handler lives in engine/server, which also owns the one function that maps
// gavel's errors to Anthropic's error shape.
package anthropic
