// Package adapters holds gavel's canonical wire model and the small interface every
// upstream provider implements.
//
// The canonical model is the OpenAI Chat Completions schema: clients speak it, and most
// upstreams (OpenAI, Azure OpenAI, DeepSeek, vLLM, Ollama) speak it too, so the common
// case translates nothing. Adapters for other vendors convert to and from these types in
// their own packages; only adapters/registry knows which adapter serves which provider type.
package adapters
