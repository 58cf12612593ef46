package adapters

// Speaker is implemented by passthrough providers whose native protocols depend on their
// configuration (an OpenAI-compatible server may or may not serve the Responses API). A
// request that only a native target can serve (the Responses API's hosted tools) is
// refused unless every target of its decision Speaks its protocol.
type Speaker interface {
	Speaks(protocol string) bool
}
