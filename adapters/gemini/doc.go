// Package gemini is the adapter for Google's Gemini API (generativelanguage.googleapis.com):
// chat through generateContent and streamGenerateContent?alt=sse, embeddings through
// batchEmbedContents.
//
// Unlike the openai adapter, this one translates everything, both ways:
//
//   - Requests: system and developer messages become systemInstruction; user and
//     assistant turns become "user" and "model" contents, consecutive turns of one side
//     merged into one (Gemini wants them to alternate); images become inlineData (data:
//     URLs) or fileData (http(s) URLs); assistant tool_calls become functionCall parts
//     and tool messages functionResponse parts, named by looking up the tool_call_id in
//     the conversation; tools become functionDeclarations with their JSON Schema cut down
//     to Gemini's Schema subset (see schema.go for what is dropped); tool_choice becomes
//     toolConfig; sampling options, n, seed, stop and JSON mode become generationConfig.
//   - Responses: candidates become choices, functionCall parts tool calls with ids
//     "call_0", "call_1"… (numbered per response), finish reasons and usageMetadata are
//     mapped onto OpenAI's.
//   - Streams: each SSE event is a partial GenerateContentResponse and becomes chunks:
//     a role chunk per choice, one content chunk per event, one whole tool call per
//     functionCall part, a finish chunk, and the usage chunk when the client asked for
//     it. Gemini sends no [DONE]: the body ending after a finishReason is the normal end,
//     and an end before one is a KindConnection failure.
//   - Errors: Google's {"error":{"code","message","status","details"}} is classified by
//     HTTP status refined by the status name and ErrorInfo reason, and RetryInfo's
//     retryDelay is honoured when no Retry-After header is sent.
//
// What does not survive the translation:
//
//   - logprobs, top_logprobs, logit_bias, user, service_tier, store, metadata,
//     parallel_tool_calls, reasoning_effort and image detail are not sent;
//     presence_penalty and frequency_penalty are sent only when non-zero.
//   - System messages anywhere in the conversation are hoisted into systemInstruction.
//   - Gemini's thought summaries, thought signatures, inline media it generates, safety
//     ratings and citations are not returned; thinking tokens are counted in
//     completion_tokens and completion_tokens_details.reasoning_tokens. Because the
//     signatures cannot make the round trip, function calls sent back to Gemini carry
//     the placeholder signature Google documents for foreign history (Gemini 3 rejects
//     function calls without one).
//   - Tool call ids are generated, so a client sees "call_0" again in the next response;
//     the request translation resolves each tool result against the latest assistant
//     message that used its id.
//   - Embeddings carry no usage from Gemini; prompt_tokens is estimated as input bytes/4.
//
// The API key travels only in the x-goog-api-key header, never in a URL, and is
// scrubbed from any upstream text kept in an error. Every failure is returned as an
// *adapters.Error so the executor can decide retries and failover without knowing which
// vendor it talked to.
package gemini
