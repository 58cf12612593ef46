package cache

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
)

// full is a request with every optional member set and one of every nested element, so
// that TestRequestKeyCoversEveryField can change each member in turn.
func full() *adapters.ChatRequest {
	i, f, b, s := 7, 0.5, true, int64(3)
	return &adapters.ChatRequest{
		Model: "smart",
		Messages: []adapters.Message{{
			Role: "user",
			Content: &adapters.Content{Parts: []adapters.ContentPart{{
				Type: "text", Text: "hi", ImageURL: &adapters.ImageURL{URL: "https://x/y.png", Detail: "low"},
				InputAudio: json.RawMessage(`{"data":"a"}`), File: json.RawMessage(`{"id":"f"}`),
				Extra: adapters.Fields{{Name: "cache_control", Value: json.RawMessage(`{"type":"ephemeral"}`)}},
			}}},
			Name:       "ana",
			ToolCalls:  []adapters.ToolCall{{Index: &i, ID: "c1", Type: "function", Function: adapters.FunctionCall{Name: "f", Arguments: "{}"}}},
			ToolCallID: "c0",
			Refusal:    "no",
			Extra:      adapters.Fields{{Name: "reasoning", Value: json.RawMessage(`"r"`)}},
		}},
		MaxTokens: &i, MaxCompletionTokens: &i, Temperature: &f, TopP: &f, N: &i,
		Stop: adapters.Stop{"END"}, PresencePenalty: &f, FrequencyPenalty: &f,
		LogitBias: map[string]int{"50256": -100}, Logprobs: &b, TopLogprobs: &i, Seed: &s,
		Tools:             []adapters.Tool{{Type: "function", Function: adapters.FunctionDef{Name: "f", Description: "d", Parameters: json.RawMessage(`{"type":"object"}`), Strict: &b}}},
		ToolChoice:        json.RawMessage(`"auto"`),
		ParallelToolCalls: &b, ResponseFormat: json.RawMessage(`{"type":"json_object"}`),
		ReasoningEffort: "low", ServiceTier: "flex",
		Extra: adapters.Fields{{Name: "top_k", Value: json.RawMessage(`40`)}},
	}
}

// ignored are ChatRequest's members that do not change the answer (or, Model, that the
// target replaces).
var ignored = map[string]bool{"Model": true, "Stream": true, "StreamOptions": true, "User": true, "Metadata": true, "Store": true}

// leaves lists the index paths of every exported member of t reached through structs,
// pointers to structs and the first element of slices of structs.
func leaves(t reflect.Type, prefix []int, name string, out *[]struct {
	path []int
	name string
}) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || (len(prefix) == 0 && ignored[sf.Name]) {
			continue
		}
		path := append(append([]int(nil), prefix...), i)
		n := name + "." + sf.Name
		ft := sf.Type
		switch {
		case ft == reflect.TypeOf(adapters.Fields(nil)) || ft == reflect.TypeOf(json.RawMessage(nil)):
		case ft.Kind() == reflect.Struct:
			leaves(ft, path, n, out)
			continue
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			leaves(ft.Elem(), path, n, out)
			continue
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			leaves(ft.Elem(), path, n+"[0]", out)
			continue
		}
		*out = append(*out, struct {
			path []int
			name string
		}{path, n})
	}
}

// at follows path from v, through pointers and first slice elements.
func at(v reflect.Value, path []int) reflect.Value {
	for _, i := range path {
		for v.Kind() == reflect.Pointer {
			v = v.Elem()
		}
		if v.Kind() == reflect.Slice {
			v = v.Index(0)
		}
		v = v.Field(i)
	}
	return v
}

// change gives v another value of its type.
func change(t *testing.T, name string, v reflect.Value) {
	switch {
	case v.Type() == reflect.TypeOf(adapters.Fields(nil)):
		v.Set(reflect.ValueOf(append(adapters.Fields{{Name: "zz", Value: json.RawMessage(`1`)}}, v.Interface().(adapters.Fields)...)))
		return
	case v.Type() == reflect.TypeOf(json.RawMessage(nil)):
		v.Set(reflect.ValueOf(json.RawMessage(`{"zz":1}`)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "z")
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		switch e := p.Elem(); e.Kind() {
		case reflect.Int, reflect.Int64:
			e.SetInt(v.Elem().Int() + 1)
		case reflect.Float64:
			e.SetFloat(v.Elem().Float() + 0.25)
		case reflect.Bool:
			e.SetBool(!v.Elem().Bool())
		default:
			t.Fatalf("%s: no way to change a %s", name, v.Type())
		}
		v.Set(p)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.ValueOf("zz").Convert(v.Type().Elem())))
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		m.SetMapIndex(reflect.ValueOf("1"), reflect.ValueOf(5))
		v.Set(m)
	default:
		t.Fatalf("%s: no way to change a %s: RequestKey must learn this member's type", name, v.Type())
	}
}

// Every member of a chat request that reaches the upstream changes the key: one added to
// the adapters' types without being hashed fails here.
func TestRequestKeyCoversEveryField(t *testing.T) {
	base, err := RequestKey("team:a", "p/m", full(), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	var all []struct {
		path []int
		name string
	}
	leaves(reflect.TypeOf(adapters.ChatRequest{}), nil, "ChatRequest", &all)
	if len(all) < 40 {
		t.Fatalf("only %d members found", len(all))
	}
	seen := map[string]string{}
	for _, l := range all {
		if l.name == "ChatRequest.Messages[0].Content.Text" {
			continue // full's content is parts; a string content is tested below
		}
		r := full()
		change(t, l.name, at(reflect.ValueOf(r), l.path))
		k, err := RequestKey("team:a", "p/m", r, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		if k == base {
			t.Errorf("%s changed and the key did not", l.name)
		}
		if other, dup := seen[k.Hash]; dup {
			t.Errorf("%s and %s changed give the same key", l.name, other)
		}
		seen[k.Hash] = l.name
	}
	text := full()
	text.Messages[0].Content = adapters.TextContent("hi")
	kt, _ := RequestKey("team:a", "p/m", text, false, 0)
	text.Messages[0].Content = adapters.TextContent("hi!")
	if k, _ := RequestKey("team:a", "p/m", text, false, 0); k == kt || kt == base {
		t.Error("string content does not change the key")
	}
	for name := range ignored {
		r := full()
		switch name {
		case "Model":
			r.Model = "other"
		case "Stream":
			r.Stream = true
		case "StreamOptions":
			r.StreamOptions = &adapters.StreamOptions{IncludeUsage: true}
		case "User":
			r.User = "bob"
		case "Metadata":
			r.Metadata = map[string]string{"a": "b"}
		case "Store":
			s := true
			r.Store = &s
		}
		if k, _ := RequestKey("team:a", "p/m", r, false, 0); k != base {
			t.Errorf("%s does not change the answer but changed the key", name)
		}
	}
}

// Strings are length-prefixed: moving text between members is another request.
func TestRequestKeyHasNoAmbiguousConcatenation(t *testing.T) {
	a, b := req("ab"), req("ab")
	a.Messages = append(a.Messages, adapters.Message{Role: "user", Content: adapters.TextContent("c")})
	b.Messages[0].Content = adapters.TextContent("a")
	b.Messages = append(b.Messages, adapters.Message{Role: "user", Content: adapters.TextContent("bc")})
	ka, _ := RequestKey("s", "p/m", a, false, 0)
	kb, _ := RequestKey("s", "p/m", b, false, 0)
	if ka == kb {
		t.Fatal("ab|c and a|bc share a key")
	}
	text, parts := req("hi"), req("")
	parts.Messages[0].Content = &adapters.Content{Parts: []adapters.ContentPart{{Type: "text", Text: "hi"}}}
	kt, _ := RequestKey("s", "p/m", text, false, 0)
	kp, _ := RequestKey("s", "p/m", parts, false, 0)
	if kt == kp {
		t.Fatal("string content and a text part share a key")
	}
}

// Raw JSON members are hashed as the upstream parses them: whitespace between tokens does
// not matter, inside strings it does.
func TestRequestKeyRawJSONWhitespace(t *testing.T) {
	with := func(rf string) Key {
		r := req("hi")
		r.ResponseFormat = json.RawMessage(rf)
		k, _ := RequestKey("s", "p/m", r, false, 0)
		return k
	}
	if with(`{"type": "json_object"}`) != with("{\n\t\"type\":\"json_object\" }") {
		t.Error("whitespace between tokens changed the key")
	}
	if with(`{"type":"a b"}`) == with(`{"type":"ab"}`) {
		t.Error("whitespace inside a string did not change the key")
	}
	if with(`{"t":"\" x"}`) == with(`{"t":"\"x"}`) {
		t.Error("an escaped quote ended the string")
	}
}

// FuzzRequestKey: a request and its copy through the wire (encoded, decoded again) share
// a key; the same request with another temperature does not.
func FuzzRequestKey(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var r1 adapters.ChatRequest
		if adapters.DecodeChatRequest(body, &r1) != nil {
			return
		}
		k1, err := RequestKey("s", "p/m", &r1, false, 0)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := RequestKey("s", "p/m", &r1, false, 0)
		if again != k1 {
			t.Fatal("the same request hashed twice gave two keys")
		}
		wire, err := r1.MarshalWire()
		if err != nil {
			return
		}
		var r2 adapters.ChatRequest
		if err := adapters.DecodeChatRequest(wire, &r2); err != nil {
			t.Fatalf("re-decoding %s: %v", wire, err)
		}
		if k2, _ := RequestKey("s", "p/m", &r2, false, 0); k2 != k1 {
			t.Fatalf("a request and its copy through the wire have different keys:\n%s\n%s", body, wire)
		}
		temp := 1.5
		if r2.Temperature != nil {
			temp = *r2.Temperature + 1
		}
		r2.Temperature = &temp
		if k3, _ := RequestKey("s", "p/m", &r2, false, 0); k3 == k1 {
			t.Fatal("another temperature kept the key")
		}
	})
}

func TestRequestKeyStringIsItsParts(t *testing.T) {
	k, err := RequestKey("team:a", "p/m", req("hi"), false, 0)
	if err != nil {
		t.Fatal(err)
	}
	lit := Key{Scope: k.Scope, Model: k.Model, Hash: k.Hash}
	if k.String() != "team:a|p/m|"+k.Hash || lit.String() != k.String() || len(k.Hash) != 64 {
		t.Fatalf("key %q, its parts %q", k.String(), lit.String())
	}
	if n := testing.AllocsPerRun(100, func() { _ = k.String() }); n != 0 {
		t.Fatalf("String allocates %v times", n)
	}
}
