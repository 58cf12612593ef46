package adapters

import (
	"encoding/json"
	"strconv"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// The request decoder's fast path. encoding/json decodes a chat body by reflection (about
// 16 allocations and a tenth of a request's CPU for a two-message body, validation pass
// included), and DecodeChatRequest then scans the body a second time for the members
// gavel has no typed field for. decodeFast does both in one pass over the bytes, and
// produces exactly what that path produces (FuzzDecodeFast compares the two on every
// input) for the bodies clients send. Anything it is not sure to decode as encoding/json
// does — a syntax error, a value of the wrong type, a member name that matches a field
// only without regard to case or has escapes, a duplicate typed member, extra_body,
// logit_bias, a string with invalid UTF-8 or a surrogate escape, deep nesting — makes it
// give up, and the body takes the reflective path, which gives the same request or the
// same error as before.

// maxFastDepth bounds the nesting decodeFast validates; deeper values go the slow way.
const maxFastDepth = 256

// fastDec is a decoder over one body. ok turns false at the first thing the fast path
// does not handle; the rest of the decode is then abandoned.
type fastDec struct {
	b  []byte
	i  int
	ok bool
	// answer: an upstream's answer, whose unknown members are dropped, not kept as Extra.
	answer bool
	// textAt, textEnd: where a chunk's first choice's text's string is; dropAt, dropEnd:
	// the string value of its last top-level member dropped, if any (ChunkDecoder's
	// layouts).
	textAt, textEnd int
	dropAt, dropEnd int
}

// decodeFast decodes body into a new request; false when the body must take the
// reflective path.
func decodeFast(body []byte) (ChatRequest, bool) {
	var r ChatRequest
	d := fastDec{b: body, ok: true}
	d.request(&r)
	d.ws()
	if !d.ok || d.i != len(d.b) {
		return ChatRequest{}, false
	}
	return r, true
}

func (d *fastDec) fail() { d.ok = false }

func (d *fastDec) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, 0 at the end.
func (d *fastDec) peek() byte {
	d.ws()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

// objStart consumes an object's opening brace and reports whether a member follows;
// with key and objNext it walks the members without a closure (whose captured variables
// would escape to the heap):
//
//	for more := d.objStart(); more; more = d.objNext() {
//		switch string(d.key()) { ... }
//	}
func (d *fastDec) objStart() bool {
	if d.peek() != '{' {
		d.fail()
		return false
	}
	d.i++
	if d.peek() == '}' {
		d.i++
		return false
	}
	return d.ok
}

// key reads a member's name (plain ASCII without escapes, or the fast path gives up) and
// the colon, leaving the decoder at the value.
func (d *fastDec) key() []byte {
	if d.peek() != '"' {
		d.fail()
		return nil
	}
	name, plain := d.rawString()
	if !plain || !d.ok {
		d.fail()
		return nil
	}
	for _, c := range name {
		if c >= utf8.RuneSelf {
			d.fail() // encoding/json folds non-ASCII names its own way
			return nil
		}
	}
	if d.peek() != ':' {
		d.fail()
		return nil
	}
	d.i++
	d.ws()
	return name
}

// objNext consumes what follows a member's value: true after a comma, false at the
// closing brace or a failure.
func (d *fastDec) objNext() bool {
	if !d.ok {
		return false
	}
	switch d.peek() {
	case ',':
		d.i++
		return true
	case '}':
		d.i++
		return false
	}
	d.fail()
	return false
}

// arrStart consumes an array's opening bracket and reports whether an element follows;
// empty reports "[]". arrNext is objNext for arrays.
func (d *fastDec) arrStart() (more, empty bool) {
	if d.peek() != '[' {
		d.fail()
		return false, false
	}
	d.i++
	if d.peek() == ']' {
		d.i++
		return false, true
	}
	return d.ok, false
}

func (d *fastDec) arrNext() bool {
	if !d.ok {
		return false
	}
	switch d.peek() {
	case ',':
		d.i++
		d.ws()
		return true
	case ']':
		d.i++
		return false
	}
	d.fail()
	return false
}

// null consumes a null literal if one is next.
func (d *fastDec) null() bool {
	if d.peek() == 'n' && d.i+4 <= len(d.b) && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// rawString reads a string token and returns its contents between the quotes, and
// whether they need no decoding (no escapes). Control characters, invalid UTF-8 and
// malformed escapes fail.
func (d *fastDec) rawString() (s []byte, plain bool) {
	// Locals, not d's fields: the compiler keeps them in registers through the loop.
	b := d.b
	i := d.i + 1 // past the opening quote
	start := i
	plain = true
	ascii := true
	for {
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			d.i = i + 1
			s = b[start:i]
			if !ascii && !utf8.Valid(s) {
				d.fail() // encoding/json replaces invalid bytes with U+FFFD
			}
			return s, plain
		case c == '\\':
			plain = false
			i++
			if i >= len(b) {
				d.i = i
				d.fail()
				return nil, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 > len(b) {
					d.i = i
					d.fail()
					return nil, false
				}
				if _, ok := hex4(b[i+1 : i+5]); !ok {
					d.i = i
					d.fail()
					return nil, false
				}
				i += 5
			default:
				d.i = i
				d.fail()
				return nil, false
			}
		case c < 0x20:
			d.i = i
			d.fail()
			return nil, false
		default: // the bytes of a character outside ASCII
			ascii = false
			i++
		}
	}
	d.i = i
	d.fail()
	return nil, false
}

// plainByte: printable ASCII but the quote and the backslash, what most of any string is.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hex4(b []byte) (rune, bool) {
	var r rune
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r*16 + rune(c)
	}
	return r, true
}

// unescape decodes the contents of a string with escapes (rawString checked them).
func unescape(s []byte) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		switch s[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			// As encoding/json: a surrogate pair is one rune, a lone surrogate U+FFFD.
			r, _ := hex4(s[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
					if r2, ok := hex4(s[i+3 : i+7]); ok {
						if dec := utf16.DecodeRune(r, r2); dec != unicode.ReplacementChar {
							out = utf8.AppendRune(out, dec)
							i += 6
							continue
						}
					}
				}
				r = unicode.ReplacementChar
			}
			out = utf8.AppendRune(out, r)
		default: // " \ /
			out = append(out, s[i])
		}
	}
	return string(out)
}

// str reads a string value into *dst; null leaves it as it is, as encoding/json does.
func (d *fastDec) str(dst *string) {
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
	if plain {
		*dst = intern(s)
	} else {
		*dst = unescape(s)
	}
}

// intern returns the shared string for the values most requests carry (roles, part and
// tool types), and a new one for anything else.
func intern(s []byte) string {
	switch string(s) {
	case "system":
		return "system"
	case "user":
		return "user"
	case "assistant":
		return "assistant"
	case "tool":
		return "tool"
	case "developer":
		return "developer"
	case "text":
		return "text"
	case "image_url":
		return "image_url"
	case "function":
		return "function"
	case "":
		return ""
	}
	return string(s)
}

// boolean reads true or false; null leaves *dst as it is.
func (d *fastDec) boolean(dst *bool) {
	switch {
	case d.null():
	case d.i+4 <= len(d.b) && string(d.b[d.i:d.i+4]) == "true":
		d.i += 4
		*dst = true
	case d.i+5 <= len(d.b) && string(d.b[d.i:d.i+5]) == "false":
		d.i += 5
		*dst = false
	default:
		d.fail()
	}
}

func (d *fastDec) optBool(dst **bool) {
	if d.null() {
		*dst = nil
		return
	}
	v := new(bool)
	d.boolean(v)
	*dst = v
}

// number reads a number token as JSON's grammar has it, and whether it is an integer
// (no fraction, no exponent).
func (d *fastDec) number() (tok []byte, integer bool) {
	start := d.i
	integer = true
	if d.i < len(d.b) && d.b[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.b) && d.b[d.i] == '0':
		d.i++
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
		}
	default:
		d.fail()
		return nil, false
	}
	if d.i < len(d.b) && d.b[d.i] == '.' {
		integer = false
		d.i++
		if !d.digits() {
			return nil, false
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		integer = false
		d.i++
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if !d.digits() {
			return nil, false
		}
	}
	return d.b[start:d.i], integer
}

func (d *fastDec) digits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	if d.i == start {
		d.fail()
		return false
	}
	return true
}

// optInt reads an integer into a new *int; null sets nil. A fraction, an exponent or an
// overflow is encoding/json's type error: the slow path reports it.
func (d *fastDec) optInt(dst **int) {
	if d.null() {
		*dst = nil
		return
	}
	n := d.int64()
	if d.ok {
		v := int(n)
		*dst = &v
	}
}

func (d *fastDec) int64() int64 {
	tok, integer := d.number()
	if !d.ok || !integer {
		d.fail()
		return 0
	}
	n, err := strconv.ParseInt(string(tok), 10, 64)
	if err != nil {
		d.fail()
	}
	return n
}

func (d *fastDec) optFloat(dst **float64) {
	if d.null() {
		*dst = nil
		return
	}
	tok, _ := d.number()
	if !d.ok {
		return
	}
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil {
		d.fail()
		return
	}
	*dst = &f
}

// skip validates any JSON value and returns its bytes.
func (d *fastDec) skip(depth int) []byte {
	if depth > maxFastDepth {
		d.fail()
		return nil
	}
	d.ws()
	start := d.i
	switch d.peek() {
	case '{':
		for more := d.objStart(); more; more = d.objNext() {
			d.key()
			d.skip(depth + 1)
		}
	case '[':
		for more, _ := d.arrStart(); more; more = d.arrNext() {
			d.skip(depth + 1)
		}
	case '"':
		d.rawString()
	case 't', 'f':
		var b bool
		d.boolean(&b)
	case 'n':
		if !d.null() {
			d.fail()
		}
	default:
		d.number()
	}
	if !d.ok {
		return nil
	}
	return d.b[start:d.i]
}

// raw reads any value into a json.RawMessage of its own, as encoding/json fills one
// (null included).
func (d *fastDec) raw(dst *json.RawMessage) {
	v := d.skip(0)
	switch {
	case !d.ok:
	case string(v) == "null":
		*dst = rawNull[:4:4] // shared: every chunk of many upstreams carries "logprobs":null
	default:
		*dst = append(json.RawMessage(nil), v...)
	}
}

var rawNull = json.RawMessage("null")

// extra keeps a member without a typed field (a request's; an answer's is dropped, as
// encoding/json drops it), unless its name is a typed field's in another case
// (encoding/json decoded it into the field).
func (d *fastDec) extra(f *Fields, known knownNames, name []byte) {
	if known.index(name) >= 0 {
		d.fail()
		return
	}
	v := d.skip(0)
	if d.ok && !d.answer {
		*f = f.set(string(name), v)
	}
}

// seen marks a typed member decoded; a second one of the same name fails (encoding/json
// merges it into the first, which the fast path does not model).
func (d *fastDec) seen(mask *uint64, bit int) {
	if *mask&(1<<bit) != 0 {
		d.fail()
	}
	*mask |= 1 << bit
}

// ignore skips a member of a typed object that has no field for it (encoding/json drops
// it), unless it names one of the fields in another case.
func (d *fastDec) ignore(name []byte, fields ...string) {
	for _, f := range fields {
		if len(f) == len(name) && asciiEqualFold(f, name) {
			d.fail()
			return
		}
	}
	d.skip(0)
}

func asciiEqualFold(s string, b []byte) bool {
	for i := 0; i < len(s); i++ {
		x, y := s[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// requestBit is the bit of a typed request member in ChatRequest.present.
func requestBit(name string) int { return requestNames.index([]byte(name)) }

var (
	bitModel, bitMessages, bitStream, bitStreamOptions, bitMaxTokens, bitMaxCompletionTokens,
	bitTemperature, bitTopP, bitN, bitStop, bitPresencePenalty, bitFrequencyPenalty, bitLogitBias,
	bitLogprobs, bitTopLogprobs, bitSeed, bitUser, bitTools, bitToolChoice,
	bitParallelToolCalls, bitResponseFormat, bitReasoningEffort, bitServiceTier, bitStore,
	bitMetadata = requestBit("model"), requestBit("messages"), requestBit("stream"),
		requestBit("stream_options"), requestBit("max_tokens"), requestBit("max_completion_tokens"),
		requestBit("temperature"), requestBit("top_p"), requestBit("n"), requestBit("stop"),
		requestBit("presence_penalty"), requestBit("frequency_penalty"), requestBit("logit_bias"),
		requestBit("logprobs"), requestBit("top_logprobs"), requestBit("seed"), requestBit("user"),
		requestBit("tools"), requestBit("tool_choice"), requestBit("parallel_tool_calls"),
		requestBit("response_format"), requestBit("reasoning_effort"), requestBit("service_tier"),
		requestBit("store"), requestBit("metadata")
)

func (d *fastDec) request(r *ChatRequest) {
	for more := d.objStart(); more; more = d.objNext() {
		name := d.key()
		if !d.ok {
			return
		}
		bit := -1
		switch string(name) {
		case "model":
			bit = bitModel
			d.str(&r.Model)
		case "messages":
			bit = bitMessages
			d.messages(r)
		case "stream":
			bit = bitStream
			d.boolean(&r.Stream)
		case "stream_options":
			bit = bitStreamOptions
			d.streamOptions(r)
		case "max_tokens":
			bit = bitMaxTokens
			d.optInt(&r.MaxTokens)
		case "max_completion_tokens":
			bit = bitMaxCompletionTokens
			d.optInt(&r.MaxCompletionTokens)
		case "temperature":
			bit = bitTemperature
			d.optFloat(&r.Temperature)
		case "top_p":
			bit = bitTopP
			d.optFloat(&r.TopP)
		case "n":
			bit = bitN
			d.optInt(&r.N)
		case "stop":
			bit = bitStop
			d.stop(r)
		case "presence_penalty":
			bit = bitPresencePenalty
			d.optFloat(&r.PresencePenalty)
		case "frequency_penalty":
			bit = bitFrequencyPenalty
			d.optFloat(&r.FrequencyPenalty)
		case "logit_bias":
			bit = bitLogitBias
			d.logitBias(r)
		case "logprobs":
			bit = bitLogprobs
			d.optBool(&r.Logprobs)
		case "top_logprobs":
			bit = bitTopLogprobs
			d.optInt(&r.TopLogprobs)
		case "seed":
			bit = bitSeed
			if d.null() {
				r.Seed = nil
			} else if n := d.int64(); d.ok {
				r.Seed = &n
			}
		case "user":
			bit = bitUser
			d.str(&r.User)
		case "tools":
			bit = bitTools
			d.tools(r)
		case "tool_choice":
			bit = bitToolChoice
			d.raw(&r.ToolChoice)
		case "parallel_tool_calls":
			bit = bitParallelToolCalls
			d.optBool(&r.ParallelToolCalls)
		case "response_format":
			bit = bitResponseFormat
			d.raw(&r.ResponseFormat)
		case "reasoning_effort":
			bit = bitReasoningEffort
			d.str(&r.ReasoningEffort)
		case "service_tier":
			bit = bitServiceTier
			d.str(&r.ServiceTier)
		case "store":
			bit = bitStore
			d.optBool(&r.Store)
		case "metadata":
			bit = bitMetadata
			d.metadata(r)
		case ExtraBody:
			d.fail() // its members override the body's: the reflective path merges them
			return
		default:
			d.extra(&r.Extra, requestNames, name)
			continue
		}
		d.seen(&r.present, bit)
	}
}

func (d *fastDec) streamOptions(r *ChatRequest) {
	if d.null() {
		r.StreamOptions = nil
		return
	}
	o := new(StreamOptions)
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "include_usage":
			d.seen(&seen, 0)
			d.boolean(&o.IncludeUsage)
		default:
			d.ignore(name, "include_usage")
		}
	}
	r.StreamOptions = o
}

func (d *fastDec) stop(r *ChatRequest) {
	switch d.peek() {
	case 'n':
		if d.null() {
			r.Stop = nil
			return
		}
		d.fail()
	case '"':
		var s string
		d.str(&s)
		r.Stop = Stop{s}
	case '[':
		more, empty := d.arrStart()
		list := []string{}
		if empty {
			r.Stop = list
			return
		}
		for ; more; more = d.arrNext() {
			if d.peek() != '"' {
				d.fail() // Stop's own UnmarshalJSON has its message for that
				return
			}
			var s string
			d.str(&s)
			list = append(list, s)
		}
		r.Stop = list
	default:
		d.fail()
	}
}

func (d *fastDec) metadata(r *ChatRequest) {
	if d.null() {
		r.Metadata = nil
		return
	}
	m := map[string]string{}
	for more := d.objStart(); more; more = d.objNext() {
		name := d.key()
		if d.peek() != '"' {
			d.fail()
			return
		}
		var v string
		d.str(&v)
		m[string(name)] = v
	}
	r.Metadata = m
}

func (d *fastDec) logitBias(r *ChatRequest) {
	if d.null() {
		r.LogitBias = nil
		return
	}
	m := map[string]int{}
	for more := d.objStart(); more; more = d.objNext() {
		name := d.key()
		if !d.ok || d.null() {
			d.fail()
			return
		}
		m[string(name)] = int(d.int64())
	}
	r.LogitBias = m
}

func (d *fastDec) tools(r *ChatRequest) {
	if d.null() {
		r.Tools = nil
		return
	}
	tools := []Tool{}
	for more, _ := d.arrStart(); more; more = d.arrNext() {
		var t Tool
		var seen uint64
		if d.peek() != '{' {
			d.fail()
			return
		}
		for more := d.objStart(); more; more = d.objNext() {
			switch name := d.key(); string(name) {
			case "type":
				d.seen(&seen, 0)
				d.str(&t.Type)
			case "function":
				d.seen(&seen, 1)
				d.functionDef(&t.Function)
			default:
				d.ignore(name, "type", "function")
			}
		}
		tools = append(tools, t)
	}
	r.Tools = tools
}

func (d *fastDec) functionDef(f *FunctionDef) {
	if d.null() {
		return
	}
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "name":
			d.seen(&seen, 0)
			d.str(&f.Name)
		case "description":
			d.seen(&seen, 1)
			d.str(&f.Description)
		case "parameters":
			d.seen(&seen, 2)
			d.raw(&f.Parameters)
		case "strict":
			d.seen(&seen, 3)
			d.optBool(&f.Strict)
		default:
			d.ignore(name, "name", "description", "parameters", "strict")
		}
	}
}

// contentBlock is how many messages' contents share one allocation.
const contentBlock = 4

// messages decodes the messages array; the contents of every contentBlock messages share
// one allocation.
func (d *fastDec) messages(r *ChatRequest) {
	if d.null() {
		r.Messages = nil
		return
	}
	msgs := make([]Message, 0, 4)
	var free []Content // the current block's unused contents
	for more, _ := d.arrStart(); more; more = d.arrNext() {
		if d.peek() != '{' {
			d.fail()
			return
		}
		var m Message
		var c Content
		has := d.message(&m, &c)
		if has {
			if len(free) == 0 {
				free = make([]Content, contentBlock)
			}
			free[0] = c
			m.Content = &free[0]
			free = free[1:]
		}
		msgs = append(msgs, m)
	}
	r.Messages = msgs
}

// message decodes one message object, its content into c; false when it had none.
func (d *fastDec) message(m *Message, c *Content) (has bool) {
	if d.peek() != '{' {
		d.fail()
		return false
	}
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "role":
			d.seen(&seen, 0)
			d.str(&m.Role)
		case "content":
			d.seen(&seen, 1)
			has = d.content(c)
		case "name":
			d.seen(&seen, 2)
			d.str(&m.Name)
		case "tool_calls":
			d.seen(&seen, 3)
			d.toolCalls(&m.ToolCalls)
		case "tool_call_id":
			d.seen(&seen, 4)
			d.str(&m.ToolCallID)
		case "refusal":
			d.seen(&seen, 5)
			d.str(&m.Refusal)
		default:
			d.extra(&m.Extra, messageNames, name)
		}
	}
	return has
}

// content decodes a message's content into c; false when it was null (no content).
func (d *fastDec) content(c *Content) bool {
	*c = Content{}
	switch d.peek() {
	case 'n':
		if !d.null() {
			d.fail()
		}
		return false
	case '"':
		d.str(&c.Text)
		return true
	case '[':
		parts := []ContentPart{}
		for more, _ := d.arrStart(); more; more = d.arrNext() {
			if d.peek() != '{' {
				d.fail()
				return false
			}
			var p ContentPart
			var seen uint64
			for more := d.objStart(); more; more = d.objNext() {
				switch name := d.key(); string(name) {
				case "type":
					d.seen(&seen, 0)
					d.str(&p.Type)
				case "text":
					d.seen(&seen, 1)
					d.str(&p.Text)
				case "image_url":
					d.seen(&seen, 2)
					d.imageURL(&p)
				case "input_audio":
					d.seen(&seen, 3)
					d.raw(&p.InputAudio)
				case "file":
					d.seen(&seen, 4)
					d.raw(&p.File)
				default:
					d.extra(&p.Extra, partNames, name)
				}
			}
			parts = append(parts, p)
		}
		c.Parts = parts
		return true
	default:
		d.fail()
		return false
	}
}

func (d *fastDec) imageURL(p *ContentPart) {
	if d.null() {
		p.ImageURL = nil
		return
	}
	u := new(ImageURL)
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "url":
			d.seen(&seen, 0)
			d.str(&u.URL)
		case "detail":
			d.seen(&seen, 1)
			d.str(&u.Detail)
		default:
			d.ignore(name, "url", "detail")
		}
	}
	p.ImageURL = u
}

func (d *fastDec) toolCalls(dst *[]ToolCall) {
	if d.null() {
		*dst = nil
		return
	}
	calls := []ToolCall{}
	for more, _ := d.arrStart(); more; more = d.arrNext() {
		if d.peek() != '{' {
			d.fail()
			return
		}
		var tc ToolCall
		var seen uint64
		for more := d.objStart(); more; more = d.objNext() {
			switch name := d.key(); string(name) {
			case "index":
				d.seen(&seen, 0)
				d.optInt(&tc.Index)
			case "id":
				d.seen(&seen, 1)
				d.str(&tc.ID)
			case "type":
				d.seen(&seen, 2)
				d.str(&tc.Type)
			case "function":
				d.seen(&seen, 3)
				d.functionCall(&tc.Function)
			default:
				d.ignore(name, "index", "id", "type", "function")
			}
		}
		calls = append(calls, tc)
	}
	*dst = calls
}

func (d *fastDec) functionCall(f *FunctionCall) {
	if d.null() {
		return
	}
	var seen uint64
	for more := d.objStart(); more; more = d.objNext() {
		switch name := d.key(); string(name) {
		case "name":
			d.seen(&seen, 0)
			d.str(&f.Name)
		case "arguments":
			d.seen(&seen, 1)
			d.str(&f.Arguments)
		default:
			d.ignore(name, "name", "arguments")
		}
	}
}
