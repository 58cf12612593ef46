// Package responses is the OpenAI Responses API (POST /v1/responses) as a client speaks
// it: its request, response and stream-event wire types, the translation of a request
// into the canonical chat request every adapter serves (and of a chat answer back into a
// Response), and the conversion of a chat chunk stream into the Responses events
// OpenAI sends, numbered by sequence_number. It does no I/O: engine/server decodes and
// encodes, engine/pipeline runs the request.
//
// What the canonical types cannot carry is dropped on the translated path, as
// docs/agents.md lists (reasoning items and summaries, annotations, logprobs, hosted
// tools); hosted tools are refused rather than silently dropped (Hosted).
package responses
