package cache

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/gavel-gw/gavel/adapters"
)

func msgs(m ...adapters.Message) *adapters.ChatRequest {
	return &adapters.ChatRequest{Model: "smart", Messages: m}
}

func user(s string) adapters.Message {
	return adapters.Message{Role: "user", Content: adapters.TextContent(s)}
}

func system(s string) adapters.Message {
	return adapters.Message{Role: "system", Content: adapters.TextContent(s)}
}

func TestSemanticPartitionSeparatesEverythingButTheLastTurn(t *testing.T) {
	base, text, err := SemanticPartition("team:a", "p/m", "e/emb", msgs(system("be brief"), user("hi there")), false, 0)
	if err != nil || text != "hi there" {
		t.Fatalf("base: %q %v", text, err)
	}
	same, _, _ := SemanticPartition("team:a", "p/m", "e/emb", msgs(system("be brief"), user("hello, you")), false, 0)
	if same != base {
		t.Fatal("another last turn changed the partition")
	}
	temp := msgs(system("be brief"), user("hi"))
	temp.Temperature = new(float64)
	*temp.Temperature = 0.5
	for name, f := range map[string]func() (Partition, string, error){
		"system prompt": func() (Partition, string, error) {
			return SemanticPartition("team:a", "p/m", "e/emb", msgs(system("be long"), user("hi")), false, 0)
		},
		"no system prompt": func() (Partition, string, error) {
			return SemanticPartition("team:a", "p/m", "e/emb", msgs(user("hi")), false, 0)
		},
		"scope": func() (Partition, string, error) {
			return SemanticPartition("team:b", "p/m", "e/emb", msgs(system("be brief"), user("hi")), false, 0)
		},
		"target": func() (Partition, string, error) {
			return SemanticPartition("team:a", "p/o", "e/emb", msgs(system("be brief"), user("hi")), false, 0)
		},
		"embed": func() (Partition, string, error) {
			return SemanticPartition("team:a", "p/m", "e/other", msgs(system("be brief"), user("hi")), false, 0)
		},
		"stream": func() (Partition, string, error) {
			return SemanticPartition("team:a", "p/m", "e/emb", msgs(system("be brief"), user("hi")), true, 0)
		},
		"max_tokens": func() (Partition, string, error) {
			return SemanticPartition("team:a", "p/m", "e/emb", msgs(system("be brief"), user("hi")), false, 7)
		},
		"params": func() (Partition, string, error) { return SemanticPartition("team:a", "p/m", "e/emb", temp, false, 0) },
	} {
		p, _, err := f()
		if err != nil || p.String() == base.String() {
			t.Errorf("%s: same partition (%v)", name, err)
		}
	}
}

func TestSemanticPartitionRefusesConversationsAndImages(t *testing.T) {
	img := adapters.Message{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{
		{Type: "text", Text: "what is this"}, {Type: "image_url", ImageURL: &adapters.ImageURL{URL: "https://x/y.png"}}}}}
	for name, r := range map[string]*adapters.ChatRequest{
		"two user turns":     msgs(user("hi"), adapters.Message{Role: "assistant", Content: adapters.TextContent("hello")}, user("hi")),
		"assistant last":     msgs(user("hi"), adapters.Message{Role: "assistant", Content: adapters.TextContent("hel")}),
		"image":              msgs(img),
		"empty":              msgs(),
		"blank turn":         msgs(user("  ")),
		"tool result last":   msgs(user("hi"), adapters.Message{Role: "tool", ToolCallID: "c", Content: adapters.TextContent("42")}),
		"two turns, a prior": msgs(user("a"), user("b")),
	} {
		if _, _, err := SemanticPartition("team:a", "p/m", "e/emb", r, false, 0); !errors.Is(err, ErrNotSemantic) {
			t.Errorf("%s: %v", name, err)
		}
	}
	parts := msgs(adapters.Message{Role: "user", Content: &adapters.Content{Parts: []adapters.ContentPart{{Type: "text", Text: "a"}, {Type: "text", Text: "b"}}}})
	if _, text, err := SemanticPartition("team:a", "p/m", "e/emb", parts, false, 0); err != nil || text != "a\nb" {
		t.Errorf("text parts: %q %v", text, err)
	}
}

func TestDecodeVector(t *testing.T) {
	v, err := DecodeVector([]byte(`[0.5, -1, 2e-1]`))
	if err != nil || len(v) != 3 || v[1] != -1 {
		t.Fatalf("floats: %v %v", v, err)
	}
	b := make([]byte, 8)
	binary.LittleEndian.PutUint32(b, math.Float32bits(0.25))
	binary.LittleEndian.PutUint32(b[4:], math.Float32bits(-3))
	v, err = DecodeVector([]byte(`"` + base64.StdEncoding.EncodeToString(b) + `"`))
	if err != nil || len(v) != 2 || v[0] != 0.25 || v[1] != -3 {
		t.Fatalf("base64: %v %v", v, err)
	}
	for _, bad := range []string{`"abc"`, `{"x":1}`, `["a"]`, `"AAA="`} {
		if _, err := DecodeVector([]byte(bad)); err == nil {
			t.Errorf("%s decoded", bad)
		}
	}
}

type semObs struct {
	evicted map[string]int
	entries int
	bytes   int64
}

func (o *semObs) SemanticIndexSize(n int, b int64)   { o.entries, o.bytes = n, b }
func (o *semObs) SemanticIndexEvicted(reason string) { o.evicted[reason]++ }

func key(h string) Key { return Key{Scope: "team:a", Model: "p/m", Hash: h} }

func TestSemanticIndexNearestWithinItsPartition(t *testing.T) {
	s := NewSemanticIndex(0, nil)
	pa := Partition{Scope: "team:a", Model: "p/m", Hash: "a"}
	pb := Partition{Scope: "team:b", Model: "p/m", Hash: "a"}
	if _, ok := s.Nearest(pa, []float32{1, 0}); ok {
		t.Fatal("match in an empty index")
	}
	s.Add(pa, []float32{1, 0, 0}, key("x"), time.Minute)
	s.Add(pa, []float32{0, 2, 0}, key("y"), time.Minute)
	s.Add(pb, []float32{1, 0.1, 0}, key("z"), time.Minute)
	m, ok := s.Nearest(pa, []float32{3, 1, 0})
	if !ok || m.Key != key("x") || math.Abs(m.Similarity-3/math.Sqrt(10)) > 1e-6 {
		t.Fatalf("nearest = %+v %v", m, ok)
	}
	if m, _ := s.Nearest(pa, []float32{0, 1, 0}); m.Key != key("y") || math.Abs(m.Similarity-1) > 1e-6 {
		t.Fatalf("nearest = %+v", m)
	}
	if m, _ := s.Nearest(pa, []float32{0, 0, 1}); m.Similarity != 0 {
		t.Fatalf("orthogonal: %+v", m)
	}
	if _, ok := s.Nearest(pa, []float32{1, 0}); ok {
		t.Fatal("a vector of other dimensions matched")
	}
	if _, ok := s.Nearest(pa, []float32{0, 0, 0}); ok {
		t.Fatal("the zero vector matched")
	}
	if m, _ := s.Nearest(pb, []float32{1, 0, 0}); m.Key != key("z") {
		t.Fatalf("partition b: %+v", m)
	}
	// Re-adding an answer replaces its vector.
	s.Add(pa, []float32{0, 0, 1}, key("x"), time.Minute)
	if s.Len() != 3 {
		t.Fatalf("len = %d", s.Len())
	}
	if m, _ := s.Nearest(pa, []float32{0, 0, 1}); m.Key != key("x") || m.Similarity < 0.999 {
		t.Fatalf("replaced: %+v", m)
	}
	s.Forget(key("x"))
	if m, _ := s.Nearest(pa, []float32{0, 0, 1}); m.Key == key("x") {
		t.Fatal("forgotten vector matched")
	}
	if n := s.Purge(Filter{Scope: "team:b"}); n != 1 || s.Len() != 1 {
		t.Fatalf("purge: %d, left %d", n, s.Len())
	}
	if n := s.Purge(Filter{}); n != 1 || s.Len() != 0 || s.Bytes() != 0 {
		t.Fatalf("purge all: %d, left %d (%d bytes)", n, s.Len(), s.Bytes())
	}
}

func TestSemanticIndexExpiresAndStaysInItsBound(t *testing.T) {
	o := &semObs{evicted: map[string]int{}}
	vec := make([]float32, 64)
	vec[0] = 1
	per := int64(4*64+len(key("00").String())) + itemOverhead
	s := NewSemanticIndex(10*per, o)
	now := time.Unix(1000, 0)
	s.now = func() time.Time { return now }
	p := Partition{Scope: "team:a", Model: "p/m", Hash: "a"}
	s.Add(p, vec, key("short"), time.Second)
	now = now.Add(2 * time.Second)
	if _, ok := s.Nearest(p, vec); ok {
		t.Fatal("an expired vector matched")
	}
	for i := range 12 {
		if !s.Add(p, vec, key(fmt.Sprintf("%02d", i)), time.Hour) {
			t.Fatal("not added")
		}
		if s.Bytes() > 10*per {
			t.Fatalf("over the bound: %d > %d", s.Bytes(), 10*per)
		}
	}
	if o.evicted["expired"] != 1 || o.evicted["size"] != 2 || o.entries != 10 || o.bytes != 10*per {
		t.Fatalf("observed %+v", o)
	}
	// The least recently used went first: 00 and 01 were evicted, the rest is there.
	s.mu.RLock()
	_, has0 := s.byKey[key("00").String()]
	_, has2 := s.byKey[key("02").String()]
	s.mu.RUnlock()
	if has0 || !has2 {
		t.Fatalf("evicted the wrong vectors: 00 %v, 02 %v", has0, has2)
	}
	if s.Add(p, make([]float32, 10000), key("big"), time.Hour) {
		t.Fatal("a vector larger than the bound was kept")
	}
}

func TestCachePurgeClearsTheSemanticIndex(t *testing.T) {
	c := New(Options{})
	p := Partition{Scope: "team:a", Model: "p/m", Hash: "a"}
	c.Semantic().Add(p, []float32{1, 2}, key("x"), time.Minute)
	c.Semantic().Add(Partition{Scope: "team:b", Model: "p/m", Hash: "a"}, []float32{1, 2}, Key{Scope: "team:b", Model: "p/m", Hash: "x"}, time.Minute)
	if _, err := c.Purge(t.Context(), Filter{Scope: "team:a"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Semantic().Nearest(p, []float32{1, 2}); ok || c.Semantic().Len() != 1 {
		t.Fatal("purge left the scope's vectors")
	}
}

func TestSemanticIndexConcurrentUse(t *testing.T) {
	s := NewSemanticIndex(64<<10, nil)
	p := Partition{Scope: "team:a", Model: "p/m", Hash: "a"}
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 500 {
				v := []float32{r.Float32(), r.Float32(), r.Float32()}
				if i%3 == 0 {
					s.Add(p, v, key(fmt.Sprint(g, i%40)), time.Minute)
				} else if i%7 == 0 {
					s.Forget(key(fmt.Sprint(g, i%40)))
				} else {
					s.Nearest(p, v)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	inParts := 0
	for _, p := range s.parts {
		inParts += len(p.items)
	}
	if s.Bytes() > 64<<10 || s.Len() != s.lru.Len() || s.Len() != inParts {
		t.Fatalf("inconsistent: %d vectors, %d in the list, %d in partitions, %d bytes", s.Len(), s.lru.Len(), inParts, s.Bytes())
	}
}

// BenchmarkSemanticNearest is a lookup's flat scan of one partition of n vectors of 1,536
// dimensions (OpenAI's text-embedding-3-small).
func BenchmarkSemanticNearest(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			const dims = 1536
			s := NewSemanticIndex(1<<40, nil)
			p := Partition{Scope: "team:a", Model: "p/m", Hash: "a"}
			r := rand.New(rand.NewPCG(1, 2))
			vec := func() []float32 {
				v := make([]float32, dims)
				for i := range v {
					v[i] = r.Float32()*2 - 1
				}
				return v
			}
			for i := range n {
				s.Add(p, vec(), key(fmt.Sprint(i)), time.Hour)
			}
			q := vec()
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := s.Nearest(p, q); !ok {
					b.Fatal("no match")
				}
			}
		})
	}
}
