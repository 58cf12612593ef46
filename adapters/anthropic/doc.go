// Package anthropic is the adapter for Anthropic's Messages API (POST /v1/messages).
//
// Clients speak OpenAI Chat Completions to gavel; this adapter translates each request to
// the Messages API and each answer back:
//
//   - system and developer messages become the top-level "system" string (joined with a
//     blank line, wherever they appeared in the conversation), or a list of text blocks
//     when one carries cache_control;
//   - of the fields the canonical types keep as Extra, top_k is sent as top_k,
//     safety_identifier as metadata.user_id (over user), and cache_control on a content
//     part or a message as the cache_control of the block (a message's: its last block);
//     the provider names any other (UnsupportedFields), and the gateway refuses or drops
//     it per drop_params;
//   - consecutive messages of the same role merge into one message with several content
//     blocks, since Anthropic requires user and assistant turns to alternate; tool results
//     ("tool" messages) travel as tool_result blocks in a user message;
//   - assistant tool_calls become tool_use blocks whose input is the parsed arguments;
//   - max_tokens, which Anthropic requires, comes from max_completion_tokens, max_tokens
//     or Config.DefaultMaxTokens; temperature is clamped to Anthropic's 0–1 range, and
//     top_p is sent only without temperature, since current models reject both;
//   - the response's text blocks are concatenated into the message content, tool_use
//     blocks become tool_calls, and stop_reason becomes finish_reason;
//   - the SSE stream of typed events (message_start, content_block_*, message_delta,
//     message_stop) becomes chat.completion.chunk objects, one event at a time.
//
// Parameters the Messages API has no equivalent for are dropped (penalties, logit_bias,
// logprobs, seed, response_format, reasoning_effort, service_tier, store, metadata,
// message names, image detail); requests that cannot be expressed at all (n > 1, audio
// or file parts, a non-object tool call argument) fail with KindBadRequest before anything
// is sent. Thinking blocks in answers are not forwarded.
//
// Every failure is returned as an *adapters.Error so the executor can decide retries and
// failover without knowing which vendor it talked to; Anthropic's 529 "overloaded_error"
// is KindOverloaded.
package anthropic
