// Package openai is the adapter for OpenAI's Chat Completions and Embeddings APIs and for
// every server that speaks them: DeepSeek, vLLM, Ollama, LM Studio, llama.cpp and Azure
// OpenAI.
//
// Because gavel's canonical model already is the OpenAI schema, this adapter translates
// almost nothing: it marshals the canonical request as is, decodes the response into the
// canonical types, and spends its care where compatible servers differ or fail: the shape
// of error bodies, Azure's URL and key header, and the SSE stream, whose reader runs once
// per streamed token and is therefore written to allocate as little as it can.
//
// Every failure is returned as an *adapters.Error so the executor can decide retries and
// failover without knowing which vendor it talked to.
package openai
