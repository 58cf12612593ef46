package adapters

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Field is a request member gavel has no typed field for, kept as the client sent it so
// that an upstream of the same protocol receives it unchanged (top_k, prediction,
// chat_template_kwargs, cache_control on a content part…).
type Field struct {
	Name  string
	Value json.RawMessage
}

// Fields are the unknown members of one JSON object, in the order the client sent them.
type Fields []Field

// Get returns the value of the field named name.
func (f Fields) Get(name string) (json.RawMessage, bool) {
	for i := range f {
		if f[i].Name == name {
			return f[i].Value, true
		}
	}
	return nil, false
}

// set adds a field, replacing an earlier one of the same name (the last one wins, as in
// encoding/json).
func (f Fields) set(name string, value []byte) Fields {
	v := append(json.RawMessage(nil), value...) // the body's buffer is reused
	for i := range f {
		if f[i].Name == name {
			f[i].Value = v
			return f
		}
	}
	return append(f, Field{Name: name, Value: v})
}

// without returns f less the fields in drop; f itself is not modified.
func (f Fields) without(drop func(string) bool) Fields {
	var out Fields
	for _, x := range f {
		if !drop(x.Name) {
			out = append(out, x)
		}
	}
	return out
}

// Paths by which nested extra fields are named: in the policy's view, in errors and in
// X-Gavel-Dropped-Params. A top-level field is named by itself.
const (
	MessageFieldPrefix = "messages[]."
	PartFieldPrefix    = "messages[].content[]."
)

// ExtraBody is the member some clients send literally (LangChain, hand-written requests)
// where the OpenAI SDKs merge their extra_body option into the body: its members count as
// top-level members.
const ExtraBody = "extra_body"

// knownNames are the JSON names of a struct's typed fields, sorted.
type knownNames []string

func jsonNames(t reflect.Type) knownNames {
	var names knownNames
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" || name == "-" {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

// index is name's position, or -1. encoding/json matches member names without regard to
// case, so a member it decoded into a typed field ("Model") is no extra field either.
func (k knownNames) index(name []byte) int {
	for i, n := range k {
		if string(name) == n {
			return i
		}
	}
	for i, n := range k {
		if bytes.EqualFold(name, []byte(n)) {
			return i
		}
	}
	return -1
}

func init() {
	if len(requestNames) > 64 {
		panic("adapters: ChatRequest.present has a bit per typed field; it needs more than 64")
	}
}

var (
	requestNames = jsonNames(reflect.TypeOf(ChatRequest{}))
	messageNames = jsonNames(reflect.TypeOf(Message{}))
	partNames    = jsonNames(reflect.TypeOf(ContentPart{}))
)

// DecodeChatRequest parses a chat completion body into r: the typed fields as
// encoding/json decodes them, then the members it does not know (at the top level, in
// messages and in content parts) kept in the Extra fields, and the members of a literal
// extra_body merged into the top level. A new request (r zero, as the server passes it)
// is decoded by the one-pass decoder of decode.go when the body is one it handles; every
// other body, and every body that fails, takes decodeReflect, so errors are
// encoding/json's.
func DecodeChatRequest(body []byte, r *ChatRequest) error {
	if r.isZero() {
		if fast, ok := decodeFast(body); ok {
			*r = fast
			return nil
		}
	}
	return decodeReflect(body, r)
}

// isZero reports whether r is a new request, which the fast decoder may fill: it does not
// merge into fields already set, as encoding/json does.
func (r *ChatRequest) isZero() bool {
	return r.Model == "" && r.Messages == nil && !r.Stream && r.StreamOptions == nil && r.MaxTokens == nil &&
		r.MaxCompletionTokens == nil && r.Temperature == nil && r.TopP == nil && r.N == nil && r.Stop == nil &&
		r.PresencePenalty == nil && r.FrequencyPenalty == nil && r.LogitBias == nil && r.Logprobs == nil &&
		r.TopLogprobs == nil && r.Seed == nil && r.User == "" && r.Tools == nil && r.ToolChoice == nil &&
		r.ParallelToolCalls == nil && r.ResponseFormat == nil && r.ReasoningEffort == "" && r.ServiceTier == "" &&
		r.Store == nil && r.Metadata == nil && r.Extra == nil && r.present == 0 && r.clientFields == nil
}

// decodeReflect is DecodeChatRequest through encoding/json and a second pass over the
// body for the members without a typed field, which reads the body without allocating
// when it has none.
func decodeReflect(body []byte, r *ChatRequest) error {
	if err := json.Unmarshal(body, r); err != nil {
		return err
	}
	extraBody, err := r.collect(body, true)
	if err != nil || extraBody == nil {
		return err
	}
	// The SDKs let extra_body override the body's own members; so does this.
	if err := json.Unmarshal(extraBody, r); err != nil {
		return err
	}
	_, err = r.collect(extraBody, false)
	return err
}

// collect records the members of the object obj (valid JSON) that no typed field holds,
// and which typed fields are present. It returns the value of a top-level extra_body
// when top is set.
func (r *ChatRequest) collect(obj []byte, top bool) (extraBody []byte, err error) {
	s := scanner{b: obj}
	err = s.object(func(name, value []byte, _ int) error {
		if i := requestNames.index(name); i >= 0 {
			r.present |= 1 << i
			if requestNames[i] == "messages" {
				r.collectMessages(value)
			}
			return nil
		}
		key := decodeName(name)
		if top && key == ExtraBody {
			switch value[0] {
			case '{':
				extraBody = value
			case 'n':
			default:
				return errors.New("extra_body must be an object")
			}
			return nil
		}
		r.Extra = r.Extra.set(key, value)
		return nil
	})
	return extraBody, err
}

// collectMessages keeps the unknown members of each message and of its content parts.
// The typed fields were decoded from the same array, so element i is r.Messages[i].
func (r *ChatRequest) collectMessages(arr []byte) {
	if arr[0] != '[' {
		return
	}
	s := scanner{b: arr}
	i := 0
	s.array(func(elem []byte, _ int) {
		if i >= len(r.Messages) || elem[0] != '{' {
			i++
			return
		}
		m := &r.Messages[i]
		m.Extra = nil
		es := scanner{b: elem}
		es.object(func(name, value []byte, _ int) error {
			if k := messageNames.index(name); k >= 0 {
				if messageNames[k] == "content" && value[0] == '[' && m.Content != nil {
					collectParts(value, m.Content.Parts)
				}
				return nil
			}
			m.Extra = m.Extra.set(decodeName(name), value)
			return nil
		})
		i++
	})
}

func collectParts(arr []byte, parts []ContentPart) {
	s := scanner{b: arr}
	j := 0
	s.array(func(elem []byte, _ int) {
		if j >= len(parts) || elem[0] != '{' {
			j++
			return
		}
		p := &parts[j]
		ps := scanner{b: elem}
		ps.object(func(name, value []byte, _ int) error {
			if partNames.index(name) < 0 {
				p.Extra = p.Extra.set(decodeName(name), value)
			}
			return nil
		})
		j++
	})
}

// decodeName turns a member name as written (without its quotes) into its string; only a
// name with escapes needs decoding.
func decodeName(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if json.Unmarshal(q, &s) != nil {
		return string(raw)
	}
	return s
}

// HasExtra reports whether the request carries any unknown member, at any level.
func (r *ChatRequest) HasExtra() bool {
	if len(r.Extra) > 0 {
		return true
	}
	for i := range r.Messages {
		m := &r.Messages[i]
		if len(m.Extra) > 0 {
			return true
		}
		if m.Content != nil {
			for j := range m.Content.Parts {
				if len(m.Content.Parts[j].Extra) > 0 {
					return true
				}
			}
		}
	}
	return false
}

// FieldNames lists, sorted, the top-level members the client sent: the typed fields it
// set and its extra fields, extra_body's members counted as top-level ones. Nested extra
// fields are listed once by path (messages[].content[].cache_control). A request built in
// code, not decoded, lists its extra fields only. The list may be shared with other
// requests: do not modify it.
func (r *ChatRequest) FieldNames() []string {
	if r.clientFields != nil {
		return r.clientFields
	}
	if !r.HasExtra() {
		return typedNames(r.present)
	}
	n := len(r.Extra)
	for m := r.present; m != 0; m &= m - 1 {
		n++
	}
	names := make([]string, 0, n)
	for i, name := range requestNames {
		if r.present&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	sorted := true
	for _, f := range r.Extra {
		names = append(names, f.Name)
		sorted = false
	}
	for _, p := range r.nestedNames() {
		if !contains(names, p) {
			names = append(names, p)
			sorted = false
		}
	}
	if !sorted {
		sort.Strings(names)
	}
	return names
}

// SetFieldNames sets what FieldNames reports, for a request translated from another
// protocol (the Responses API, Anthropic Messages): the member names of the client's own
// body, as MemberNames gives them, so that the policy sees what the client sent.
func (r *ChatRequest) SetFieldNames(names []string) { r.clientFields = names }

// FieldNamer is implemented by a client protocol's request types that keep the member
// names of the body they were decoded from (MemberNames); the server sets them after
// decoding.
type FieldNamer interface {
	SetFieldNames(names []string)
}

// MemberNames lists, sorted and once each, the member names of the JSON object body
// (valid JSON, as encoding/json accepted it); nil when body is not an object.
func MemberNames(body []byte) []string {
	var names []string
	s := scanner{b: body}
	s.object(func(name, _ []byte, _ int) error {
		if n := decodeName(name); !contains(names, n) {
			names = append(names, n)
		}
		return nil
	})
	sort.Strings(names)
	return names
}

// typedNames lists the typed fields of a present mask. Requests mostly carry one of a few
// sets of them, so the lists are kept (a bounded number) and shared.
func typedNames(present uint64) []string {
	if present == 0 {
		return nil
	}
	typedSets.mu.RLock()
	names, ok := typedSets.m[present]
	typedSets.mu.RUnlock()
	if ok {
		return names
	}
	for i, name := range requestNames {
		if present&(1<<i) != 0 {
			names = append(names, name)
		}
	}
	typedSets.mu.Lock()
	if len(typedSets.m) < maxTypedSets {
		typedSets.m[present] = names
	}
	typedSets.mu.Unlock()
	return names
}

// maxTypedSets bounds the lists typedNames keeps.
const maxTypedSets = 1024

var typedSets = struct {
	mu sync.RWMutex
	m  map[uint64][]string
}{m: map[uint64][]string{}}

// nestedNames are the paths of the extra fields of messages and content parts.
func (r *ChatRequest) nestedNames() []string {
	var out []string
	for i := range r.Messages {
		m := &r.Messages[i]
		for _, f := range m.Extra {
			if p := MessageFieldPrefix + f.Name; !contains(out, p) {
				out = append(out, p)
			}
		}
		if m.Content == nil {
			continue
		}
		for j := range m.Content.Parts {
			for _, f := range m.Content.Parts[j].Extra {
				if p := PartFieldPrefix + f.Name; !contains(out, p) {
					out = append(out, p)
				}
			}
		}
	}
	return out
}

// ExtraNames lists, sorted and once each, the request's extra fields at every level:
// top-level ones by name, nested ones by path.
func (r *ChatRequest) ExtraNames() []string {
	var out []string
	for _, f := range r.Extra {
		if !contains(out, f.Name) {
			out = append(out, f.Name)
		}
	}
	for _, p := range r.nestedNames() {
		if !contains(out, p) {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// WithoutFields returns a copy of r without the extra fields named (top-level names and
// nested paths, as ExtraNames gives them) and without the typed fields named (as Sets
// names them). r is not modified: what is changed is copied.
func (r *ChatRequest) WithoutFields(names []string) *ChatRequest {
	drop := func(prefix string) func(string) bool {
		return func(name string) bool {
			for _, n := range names {
				if len(n) == len(prefix)+len(name) && strings.HasPrefix(n, prefix) && n[len(prefix):] == name {
					return true
				}
			}
			return false
		}
	}
	out := *r
	out.Extra = r.Extra.without(drop(""))
	dropMsg, dropPart := drop(MessageFieldPrefix), drop(PartFieldPrefix)
	msgs := make([]Message, len(r.Messages))
	copy(msgs, r.Messages)
	for i := range msgs {
		m := &msgs[i]
		if len(m.Extra) > 0 {
			m.Extra = m.Extra.without(dropMsg)
		}
		if m.Content == nil || m.Content.Parts == nil {
			continue
		}
		c := *m.Content
		c.Parts = append([]ContentPart(nil), c.Parts...)
		for j := range c.Parts {
			if len(c.Parts[j].Extra) > 0 {
				c.Parts[j].Extra = c.Parts[j].Extra.without(dropPart)
			}
		}
		m.Content = &c
	}
	out.Messages = msgs
	for _, n := range names {
		out.clearTyped(n)
	}
	return &out
}

// MarshalWire encodes the request as the OpenAI protocol carries it: the typed fields,
// and every extra field (top-level, in messages, in content parts) as it was received,
// before the closing brace of its object. A request without extra fields encodes exactly
// as json.Marshal encodes it.
func (r *ChatRequest) MarshalWire() ([]byte, error) {
	return r.appendJSON(make([]byte, 0, r.SizeHint()), extrasVerbatim)
}

// scanner walks valid JSON (it has been through encoding/json already) without
// allocating: it finds the members of an object and the elements of an array.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// object calls member for each member of the object at the scanner's position, with the
// member's name as written (no quotes), its value's bytes and their offset in s.b.
func (s *scanner) object(member func(name, value []byte, at int) error) error {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return nil
	}
	s.i++
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] == '}' {
			s.i++
			return nil
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		start := s.i + 1
		s.skipString()
		name := s.b[start : s.i-1]
		s.ws()
		s.i++ // ':'
		s.ws()
		vstart := s.i
		s.skipValue()
		if err := member(name, s.b[vstart:s.i], vstart); err != nil {
			return err
		}
	}
}

// array calls elem for each element of the array at the scanner's position, with its
// offset in s.b.
func (s *scanner) array(elem func(value []byte, at int)) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '[' {
		return
	}
	s.i++
	for {
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] == ']' {
			s.i++
			return
		}
		if s.b[s.i] == ',' {
			s.i++
			continue
		}
		start := s.i
		s.skipValue()
		elem(s.b[start:s.i], start)
	}
}

func (s *scanner) skipString() {
	s.i++ // opening quote
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return
		default:
			s.i++
		}
	}
}

func (s *scanner) skipValue() {
	if s.i >= len(s.b) {
		return
	}
	switch s.b[s.i] {
	case '"':
		s.skipString()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i++
					return
				}
			}
			s.i++
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}

// QuoteNames renders field names for an error message: 'a', 'b' and 'c'.
func QuoteNames(names []string) string {
	var b strings.Builder
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			b.WriteString(" and ")
		default:
			b.WriteString(", ")
		}
		b.WriteString("'" + n + "'")
	}
	return b.String()
}
