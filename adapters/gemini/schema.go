package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Gemini's function parameters and responseSchema are not JSON Schema but its Schema
// message, "a select subset of an OpenAPI 3.0 schema object", parsed as a protocol
// buffer: a key it does not know is not ignored, it fails the whole request with
// `Invalid JSON payload received. Unknown name "additionalProperties"`. OpenAI clients
// send full JSON Schema (pydantic and zod emit "$schema", "additionalProperties": false,
// "$defs"/"$ref", "title" everywhere), so sanitizeSchema rewrites a schema into the
// subset, keeping only the keys of schemaKeys at schema positions:
//
//   - "$ref" to "#/$defs/X" or "#/definitions/X" is replaced by the definition, inlined
//     (sibling keys of the $ref win); a recursive or unresolvable $ref is dropped.
//   - "type": ["string", "null"] becomes "type": "STRING", "nullable": true; several
//     non-null types become an anyOf of one schema per type; types are upper-cased, the
//     spelling of Gemini's Type enum.
//   - anyOf [X, {"type": "null"}], the optional X of pydantic and zod, becomes X with
//     "nullable": true; an untyped enum (or const) of strings gets "type": "STRING".
//   - "oneOf" becomes "anyOf" (Gemini has no exclusive variant; the model is told less),
//     and an "allOf" of one schema is merged into its parent; longer allOfs are dropped.
//   - "const" becomes a one-value "enum"; enum values become strings (Gemini's enum is a
//     list of strings) and a null among them becomes "nullable": true.
//   - "format" is kept only for the formats Gemini accepts (enum, date-time, float,
//     double, int32, int64); "uuid", "email", "uri" and the like are dropped.
//   - "required" keeps only names that are in "properties": Gemini rejects the others.
//   - dropped outright: $schema, $id, $comment, $defs, definitions, additionalProperties,
//     patternProperties, unevaluatedProperties, propertyNames, dependentRequired,
//     dependentSchemas, dependencies, not, if/then/else, prefixItems, contains,
//     uniqueItems, multipleOf, exclusiveMinimum, exclusiveMaximum, examples, readOnly,
//     writeOnly, deprecated, contentEncoding, contentMediaType, discriminator, and
//     anything else not in schemaKeys.
//
// Property names are never touched: a property called "additionalProperties" survives.
// The model sees fewer constraints than the client declared, so a caller that needs
// them enforced must validate the output itself.

// schemaKeys are the Schema message's fields (ai.google.dev/api/caching#Schema).
var schemaKeys = map[string]bool{
	"type": true, "format": true, "title": true, "description": true, "nullable": true,
	"enum": true, "maxItems": true, "minItems": true, "properties": true, "required": true,
	"minProperties": true, "maxProperties": true, "minLength": true, "maxLength": true,
	"pattern": true, "example": true, "anyOf": true, "propertyOrdering": true,
	"default": true, "items": true, "minimum": true, "maximum": true,
}

var schemaFormats = map[string]bool{
	"enum": true, "date-time": true, "float": true, "double": true, "int32": true, "int64": true,
}

var schemaTypes = map[string]string{
	"string": "STRING", "number": "NUMBER", "integer": "INTEGER", "boolean": "BOOLEAN",
	"array": "ARRAY", "object": "OBJECT",
}

const (
	// maxSchemaDepth bounds nesting (and $ref expansion), so a hostile schema cannot make
	// the translation recurse without end or blow up exponentially.
	maxSchemaDepth = 64
	// maxSchemaNodes bounds the schema nodes one sanitisation may produce: $refs shared by
	// many properties expand multiplicatively.
	maxSchemaNodes = 10000
)

var errSchemaTooDeep = errors.New("schema nests too deeply")

// sanitizeSchema rewrites a JSON Schema into Gemini's subset. addOrdering adds
// "propertyOrdering" from the declared key order where the schema has none: Gemini
// otherwise emits structured output with its properties in alphabetical order.
// The result is nil when nothing of the schema is left.
func sanitizeSchema(raw json.RawMessage, addOrdering bool) (json.RawMessage, error) {
	root, err := decodeOrdered(raw)
	if err != nil {
		return nil, err
	}
	obj, ok := root.(*object)
	if !ok {
		if b, isBool := root.(bool); isBool && b {
			return nil, nil // `true` accepts anything: no schema at all
		}
		return nil, errors.New("a schema must be a JSON object")
	}
	s := &sanitizer{root: obj, ordering: addOrdering}
	out, err := s.schema(obj, 0, nil)
	if err != nil {
		return nil, err
	}
	if len(out.keys) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	writeJSON(&buf, out)
	return buf.Bytes(), nil
}

type sanitizer struct {
	root     *object
	ordering bool
	nodes    int
}

// schema sanitises one schema object. refs holds the $refs being expanded on the way
// down, to cut recursion.
func (s *sanitizer) schema(in *object, depth int, refs []string) (*object, error) {
	if depth > maxSchemaDepth {
		return nil, errSchemaTooDeep
	}
	if s.nodes++; s.nodes > maxSchemaNodes {
		return nil, errors.New("schema is too large")
	}
	in, refs = s.flatten(in, refs)
	out := &object{}
	var nullable bool
	allStrings := false // an enum (or const) whose values were all strings
	for _, k := range in.keys {
		v := in.vals[k]
		switch k {
		case "$ref", "oneOf", "allOf", "const":
			// resolved by flatten, or mapped below
		case "type":
			switch t := v.(type) {
			case string:
				if gt, ok := schemaTypes[strings.ToLower(t)]; ok {
					out.set("type", gt)
				} else if strings.EqualFold(t, "null") {
					nullable = true
				}
			case []any:
				var types []string
				for _, e := range t {
					str, _ := e.(string)
					if strings.EqualFold(str, "null") {
						nullable = true
					} else if gt, ok := schemaTypes[strings.ToLower(str)]; ok {
						types = append(types, gt)
					}
				}
				switch {
				case len(types) == 1:
					out.set("type", types[0])
				case len(types) > 1 && !in.has("anyOf") && !in.has("oneOf"):
					alts := make([]any, len(types))
					for i, gt := range types {
						alts[i] = &object{keys: []string{"type"}, vals: map[string]any{"type": gt}}
					}
					out.set("anyOf", alts)
				}
			}
		case "format":
			if f, ok := v.(string); ok && schemaFormats[f] {
				out.set(k, f)
			}
		case "title", "description", "pattern":
			if str, ok := v.(string); ok {
				out.set(k, str)
			}
		case "nullable":
			if b, ok := v.(bool); ok && b {
				nullable = true
			}
		case "enum":
			vals, isNull, strs := enumStrings(v)
			nullable = nullable || isNull
			if len(vals) > 0 {
				out.set(k, vals)
				allStrings = strs
			}
		case "minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties":
			if n, ok := v.(json.Number); ok {
				if i, err := strconv.ParseInt(string(n), 10, 64); err == nil && i >= 0 {
					out.set(k, n)
				}
			}
		case "minimum", "maximum":
			if n, ok := v.(json.Number); ok {
				out.set(k, n)
			}
		case "example", "default":
			out.set(k, v)
		case "properties":
			props, ok := v.(*object)
			if !ok {
				continue
			}
			po := &object{}
			for _, name := range props.keys {
				ps, ok := props.vals[name].(*object)
				if !ok {
					if b, isBool := props.vals[name].(bool); !isBool || !b {
						continue
					}
					ps = &object{} // `true`: any value
				}
				sub, err := s.schema(ps, depth+1, refs)
				if err != nil {
					return nil, err
				}
				po.set(name, sub)
			}
			out.set(k, po)
			if s.ordering && !in.has("propertyOrdering") && len(po.keys) > 1 {
				order := make([]any, len(po.keys))
				for i, name := range po.keys {
					order[i] = name
				}
				out.set("propertyOrdering", order)
			}
		case "items":
			items, ok := v.(*object)
			if !ok {
				// Draft-4 tuple form: the first schema is the best single description.
				if arr, isArr := v.([]any); isArr && len(arr) > 0 {
					items, ok = arr[0].(*object)
				}
			}
			if !ok {
				continue
			}
			sub, err := s.schema(items, depth+1, refs)
			if err != nil {
				return nil, err
			}
			out.set(k, sub)
		case "anyOf":
			alts, err := s.schemaList(v, depth, refs)
			if err != nil {
				return nil, err
			}
			if len(alts) > 0 {
				out.set(k, alts)
			}
		case "required", "propertyOrdering":
			arr, ok := v.([]any)
			if !ok {
				continue
			}
			names := make([]any, 0, len(arr))
			for _, e := range arr {
				if name, ok := e.(string); ok {
					names = append(names, name)
				}
			}
			out.set(k, names)
		default:
			// Not in Gemini's Schema: see the list at the top of this file.
		}
	}
	// oneOf has no Gemini equivalent; anyOf is the closest that is accepted.
	if v, ok := in.vals["oneOf"]; ok && !out.has("anyOf") {
		alts, err := s.schemaList(v, depth, refs)
		if err != nil {
			return nil, err
		}
		if len(alts) > 0 {
			out.set("anyOf", alts)
		}
	}
	if v, ok := in.vals["const"]; ok && !out.has("enum") {
		vals, isNull, strs := enumStrings([]any{v})
		nullable = nullable || isNull
		if len(vals) > 0 {
			out.set("enum", vals)
			allStrings = strs
		}
	}
	// anyOf [X, {"type": "null"}] is how pydantic and zod spell an optional X: Gemini's
	// spelling is X with "nullable": true.
	if alts, ok := out.vals["anyOf"].([]any); ok {
		kept := make([]any, 0, len(alts))
		for _, a := range alts {
			if o := a.(*object); len(o.keys) == 1 && o.vals["nullable"] == true {
				nullable = true
				continue
			}
			kept = append(kept, a)
		}
		switch {
		case len(kept) == 1:
			out.del("anyOf")
			only := kept[0].(*object)
			for _, k := range only.keys {
				if !out.has(k) {
					out.set(k, only.vals[k])
				}
			}
		case len(kept) == 0:
			out.del("anyOf")
		default:
			out.vals["anyOf"] = kept
		}
	}
	// Gemini's enum belongs to a typed value; an untyped enum of strings is a STRING.
	if !out.has("type") && !out.has("anyOf") && allStrings {
		out.set("type", "STRING")
	}
	if nullable {
		out.set("nullable", true)
	}
	// "required" may only name declared properties.
	if req, ok := out.vals["required"].([]any); ok {
		props, _ := out.vals["properties"].(*object)
		kept := req[:0]
		for _, name := range req {
			if props != nil && props.has(name.(string)) {
				kept = append(kept, name)
			}
		}
		if len(kept) == 0 {
			out.del("required")
		} else {
			out.vals["required"] = kept
		}
	}
	if order, ok := out.vals["propertyOrdering"].([]any); ok && len(order) == 0 {
		out.del("propertyOrdering")
	}
	return out, nil
}

func (s *sanitizer) schemaList(v any, depth int, refs []string) ([]any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, nil
	}
	out := make([]any, 0, len(arr))
	for _, e := range arr {
		o, ok := e.(*object)
		if !ok {
			continue
		}
		sub, err := s.schema(o, depth+1, refs)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	return out, nil
}

// flatten resolves a local $ref and a one-element allOf into a single schema object;
// keys of the referring object win over the definition's. It returns the $refs expanded
// so far, which the schema's children must not expand again.
func (s *sanitizer) flatten(in *object, refs []string) (*object, []string) {
	for range maxSchemaDepth {
		if ref, ok := in.vals["$ref"].(string); ok {
			if slices.Contains(refs, ref) {
				return in.without("$ref"), refs // recursive: cut here
			}
			base := s.resolve(ref)
			if base == nil {
				return in.without("$ref"), refs
			}
			refs = append(refs[:len(refs):len(refs)], ref) // never share a sibling's array
			in = merge(base, in.without("$ref"))
			continue
		}
		if all, ok := in.vals["allOf"].([]any); ok && len(all) == 1 {
			if o, ok := all[0].(*object); ok {
				in = merge(o, in.without("allOf"))
				continue
			}
		}
		return in, refs
	}
	return in.without("$ref"), refs
}

// resolve finds a local definition: "#/$defs/Name" or "#/definitions/Name".
func (s *sanitizer) resolve(ref string) *object {
	for _, prefix := range []string{"#/$defs/", "#/definitions/"} {
		name, ok := strings.CutPrefix(ref, prefix)
		if !ok {
			continue
		}
		name = strings.ReplaceAll(strings.ReplaceAll(name, "~1", "/"), "~0", "~")
		defs, _ := s.root.vals[strings.Trim(prefix[1:], "/")].(*object)
		if defs == nil {
			return nil
		}
		o, _ := defs.vals[name].(*object)
		return o
	}
	if ref == "#" {
		return s.root
	}
	return nil
}

// enumStrings renders enum values as Gemini's strings; null is reported apart, and
// strs tells whether every non-null value was a string to begin with.
func enumStrings(v any) (vals []any, hasNull, strs bool) {
	arr, ok := v.([]any)
	if !ok {
		return nil, false, false
	}
	strs = true
	for _, e := range arr {
		switch t := e.(type) {
		case nil:
			hasNull = true
		case string:
			vals = append(vals, t)
		case json.Number:
			vals, strs = append(vals, string(t)), false
		case bool:
			vals, strs = append(vals, strconv.FormatBool(t)), false
		default:
			strs = false // objects and arrays have no string form in an enum
		}
	}
	return vals, hasNull, strs
}

// object is a JSON object that remembers its key order, so that a schema's properties
// reach Gemini (and its propertyOrdering) in the order the client declared them.
type object struct {
	keys []string
	vals map[string]any
}

func (o *object) has(k string) bool { _, ok := o.vals[k]; return ok }

func (o *object) set(k string, v any) {
	if o.vals == nil {
		o.vals = make(map[string]any)
	}
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

func (o *object) without(k string) *object {
	c := &object{keys: make([]string, 0, len(o.keys)), vals: make(map[string]any, len(o.vals))}
	for _, key := range o.keys {
		if key != k {
			c.set(key, o.vals[key])
		}
	}
	return c
}

// merge returns base with over's keys laid on top.
func merge(base, over *object) *object {
	c := base.without("")
	for _, k := range over.keys {
		c.set(k, over.vals[k])
	}
	return c
}

// decodeOrdered parses JSON into *object, []any, json.Number, string, bool and nil.
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	if depth > 4*maxSchemaDepth {
		return nil, errSchemaTooDeep
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			o := &object{vals: map[string]any{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		}
		return nil, errors.New("invalid JSON")
	default:
		return t, nil
	}
}

// writeJSON encodes a decodeOrdered tree, objects in their key order.
func writeJSON(buf *bytes.Buffer, v any) {
	switch t := v.(type) {
	case *object:
		buf.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeString(buf, k)
			buf.WriteByte(':')
			writeJSON(buf, t.vals[k])
		}
		buf.WriteByte('}')
	case []any:
		buf.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSON(buf, e)
		}
		buf.WriteByte(']')
	case string:
		writeString(buf, t)
	case json.Number:
		buf.WriteString(string(t))
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case nil:
		buf.WriteString("null")
	}
}

func writeString(buf *bytes.Buffer, s string) {
	b, _ := json.Marshal(s) // a Go string always marshals
	buf.Write(b)
}
