package pipeline

// NativeOnly reports whether an admitted exchange can only be served by passing it
// through (the Responses API's hosted tools) and whether it will be: every target of
// its decision speaks protocol natively, and the decision does not redact (redaction
// translates). False before the decision.
func (p *Pipeline) NativeOnly(x *Exchange, protocol string) bool {
	return x.native() != nil && p.o.Executor.Speaks(x.decision, protocol)
}
