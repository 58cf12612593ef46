package adapters

// The fast path of decoding an OpenAI-compatible upstream's answers: a non-streamed
// completion (ChatResponse.UnmarshalFast) and the chunks of a stream (ChunkDecoder).
// Through encoding/json each chunk cost ~10 allocations; here a chunk of text costs two
// (the chunk with its one choice, and the text), because the strings every chunk of a
// stream repeats (id, model, object, fingerprint) are decoded once per stream. As for
// requests (decode.go), anything the fast path is not sure to decode as encoding/json
// does makes it give up, and the caller decodes with encoding/json, which gives the same
// value or the same error (FuzzDecodeAnswer compares them).

// UnmarshalFast decodes body into r when the fast path handles it, and reports whether
// it did; r is left as it was when it did not. Members without a field are dropped, as
// encoding/json drops them.
func (r *ChatResponse) UnmarshalFast(body []byte) bool {
	d := fastDec{b: body, ok: true, answer: true}
	var out ChatResponse
	var free []Content
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "id":
			d.seen(&seen, 0)
			d.str(&out.ID)
		case "object":
			d.seen(&seen, 1)
			d.str(&out.Object)
		case "created":
			d.seen(&seen, 2)
			d.int64Field(&out.Created)
		case "model":
			d.seen(&seen, 3)
			d.str(&out.Model)
		case "choices":
			d.seen(&seen, 4)
			if d.null() {
				out.Choices = nil
				continue
			}
			choices := []Choice{}
			for more, empty := d.arrStart(); more && !empty; more = d.arrNext() {
				var ch Choice
				if d.peek() != '{' {
					d.fail()
					break
				}
				var cseen uint64
				for more := d.objStart(); more; more = d.objNext() {
					switch name := d.key(); string(name) {
					case "index":
						d.seen(&cseen, 0)
						d.intField(&ch.Index)
					case "message":
						d.seen(&cseen, 1)
						if d.null() {
							continue
						}
						var c Content
						if d.message(&ch.Message, &c) {
							if len(free) == 0 {
								free = make([]Content, contentBlock)
							}
							free[0] = c
							ch.Message.Content = &free[0]
							free = free[1:]
						}
					case "finish_reason":
						d.seen(&cseen, 2)
						d.str(&ch.FinishReason)
					case "logprobs":
						d.seen(&cseen, 3)
						d.raw(&ch.Logprobs)
					default:
						d.ignore(name, "index", "message", "finish_reason", "logprobs")
					}
				}
				choices = append(choices, ch)
			}
			out.Choices = choices
		case "usage":
			d.seen(&seen, 5)
			d.usage(&out.Usage)
		case "system_fingerprint":
			d.seen(&seen, 6)
			d.str(&out.SystemFingerprint)
		case "service_tier":
			d.seen(&seen, 7)
			d.str(&out.ServiceTier)
		default:
			d.ignore(name, "id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier")
		}
		if !d.ok {
			return false
		}
	}
	d.ws()
	if !d.ok || d.i != len(d.b) {
		return false
	}
	*r = out
	return true
}

// ChunkDecoder decodes the chunks of one stream. Its zero value is ready; it is meant for
// one goroutine.
type ChunkDecoder struct {
	// The strings of the last chunk, reused while the next chunks repeat them.
	id, object, model, fingerprint, tier string
	// layout: the stream's chunks of text (chunklayout.go); stale counts the layouts
	// learned in a row that no chunk reused.
	layout *chunkLayout
	stale  int
}

// chunkAlloc is a chunk with room for the one choice and the one text most chunks have:
// one allocation instead of three.
type chunkAlloc struct {
	chunk   ChatChunk
	choice  [1]ChunkChoice
	content string
}

// Decode decodes one chunk's JSON when the fast path handles it; nil when the caller
// must decode it with encoding/json.
func (cd *ChunkDecoder) Decode(data []byte) *ChatChunk {
	if c := cd.Laid(data); c != nil {
		return c
	}
	d := fastDec{b: data, ok: true, answer: true}
	a := new(chunkAlloc)
	c := &a.chunk
	seen := uint64(0)
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "id":
			d.seen(&seen, 0)
			d.reused(&c.ID, &cd.id)
		case "object":
			d.seen(&seen, 1)
			d.reused(&c.Object, &cd.object)
		case "created":
			d.seen(&seen, 2)
			d.int64Field(&c.Created)
		case "model":
			d.seen(&seen, 3)
			d.reused(&c.Model, &cd.model)
		case "choices":
			d.seen(&seen, 4)
			d.chunkChoices(a)
		case "usage":
			d.seen(&seen, 5)
			d.usage(&c.Usage)
		case "system_fingerprint":
			d.seen(&seen, 6)
			d.reused(&c.SystemFingerprint, &cd.fingerprint)
		case "service_tier":
			d.seen(&seen, 7)
			d.reused(&c.ServiceTier, &cd.tier)
		default:
			at := d.i
			d.ignore(name, "id", "object", "created", "model", "choices", "usage", "system_fingerprint", "service_tier")
			if at < len(d.b) && d.b[at] == '"' {
				d.dropAt, d.dropEnd = at, d.i // a string dropped: a layout lets it vary
			}
		}
		if !d.ok {
			return nil
		}
	}
	d.ws()
	if !d.ok || d.i != len(d.b) {
		return nil
	}
	if d.textEnd > 0 {
		cd.learn(data, c, d.textAt, d.textEnd, d.dropAt, d.dropEnd)
	}
	return c
}

// reused reads a string into *dst, reusing *last when the text is the same.
func (d *fastDec) reused(dst, last *string) {
	if d.null() {
		return
	}
	if d.peek() != '"' {
		d.fail()
		return
	}
	s, plain := d.rawString()
	if !d.ok {
		return
	}
	switch {
	case plain && string(s) == *last:
		*dst = *last
	case plain:
		*dst = string(s)
		*last = *dst
	default:
		*dst = unescape(s)
	}
}

func (d *fastDec) chunkChoices(a *chunkAlloc) {
	c := &a.chunk
	if d.null() {
		c.Choices = nil
		return
	}
	more, empty := d.arrStart()
	if empty {
		c.Choices = []ChunkChoice{}
		return
	}
	choices := a.choice[:0]
	for ; more; more = d.arrNext() {
		if d.peek() != '{' {
			d.fail()
			return
		}
		var ch ChunkChoice
		var seen uint64
		for more := d.objStart(); more; more = d.objNext() {
			switch name := d.key(); string(name) {
			case "index":
				d.seen(&seen, 0)
				d.intField(&ch.Index)
			case "delta":
				d.seen(&seen, 1)
				d.delta(&ch.Delta, a, len(choices) == 0)
			case "finish_reason":
				d.seen(&seen, 2)
				if d.null() {
					ch.FinishReason = nil
					continue
				}
				s := new(string)
				d.str(s)
				ch.FinishReason = s
			case "logprobs":
				d.seen(&seen, 3)
				d.raw(&ch.Logprobs)
			default:
				d.ignore(name, "index", "delta", "finish_reason", "logprobs")
			}
		}
		choices = append(choices, ch)
	}
	c.Choices = choices
}

// delta decodes a choice's delta; the first choice's text goes into the chunk's own
// string.
func (d *fastDec) delta(dl *Delta, a *chunkAlloc, first bool) {
	if d.null() {
		return
	}
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "role":
			d.seen(&seen, 0)
			d.str(&dl.Role)
		case "content":
			d.seen(&seen, 1)
			if d.null() {
				dl.Content = nil
				continue
			}
			s := &a.content
			if !first {
				s = new(string)
			}
			at := d.i // at the string (null skipped the spaces before it)
			d.str(s)
			dl.Content = s
			if first {
				d.textAt, d.textEnd = at, d.i
			}
		case "refusal":
			d.seen(&seen, 2)
			if d.null() {
				dl.Refusal = nil
				continue
			}
			s := new(string)
			d.str(s)
			dl.Refusal = s
		case "tool_calls":
			d.seen(&seen, 3)
			d.toolCalls(&dl.ToolCalls)
		default:
			d.ignore(name, "role", "content", "refusal", "tool_calls")
		}
	}
}

func (d *fastDec) usage(dst **Usage) {
	if d.null() {
		*dst = nil
		return
	}
	u := new(Usage)
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "prompt_tokens":
			d.seen(&seen, 0)
			d.intField(&u.PromptTokens)
		case "completion_tokens":
			d.seen(&seen, 1)
			d.intField(&u.CompletionTokens)
		case "total_tokens":
			d.seen(&seen, 2)
			d.intField(&u.TotalTokens)
		case "prompt_tokens_details":
			d.seen(&seen, 3)
			if d.null() {
				u.PromptTokensDetails = nil
				continue
			}
			p := new(PromptTokensDetails)
			var pseen uint64
			for more := d.objStart(); more; more = d.objNext() {
				switch name := d.key(); string(name) {
				case "cached_tokens":
					d.seen(&pseen, 0)
					d.intField(&p.CachedTokens)
				case "audio_tokens":
					d.seen(&pseen, 1)
					d.intField(&p.AudioTokens)
				default:
					d.ignore(name, "cached_tokens", "audio_tokens")
				}
			}
			u.PromptTokensDetails = p
		case "completion_tokens_details":
			d.seen(&seen, 4)
			if d.null() {
				u.CompletionTokensDetails = nil
				continue
			}
			c := new(CompletionTokensDetails)
			var cseen uint64
			for more := d.objStart(); more; more = d.objNext() {
				switch name := d.key(); string(name) {
				case "reasoning_tokens":
					d.seen(&cseen, 0)
					d.intField(&c.ReasoningTokens)
				case "audio_tokens":
					d.seen(&cseen, 1)
					d.intField(&c.AudioTokens)
				default:
					d.ignore(name, "reasoning_tokens", "audio_tokens")
				}
			}
			u.CompletionTokensDetails = c
		default:
			d.ignore(name, "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details")
		}
	}
	*dst = u
}

// intField reads an integer into an int field; null leaves it as it is.
func (d *fastDec) intField(dst *int) {
	if d.null() {
		return
	}
	if n := d.int64(); d.ok {
		*dst = int(n)
	}
}

func (d *fastDec) int64Field(dst *int64) {
	if d.null() {
		return
	}
	if n := d.int64(); d.ok {
		*dst = n
	}
}
