package executor

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/engine/signals"
)

// translating is a provider of another protocol that can express top_k only, and keeps
// the requests it was sent.
type translating struct {
	*fake
	mu   sync.Mutex
	seen []*adapters.ChatRequest
}

func (p *translating) UnsupportedFields(req *adapters.ChatRequest) []string {
	var out []string
	for _, n := range req.ExtraNames() {
		if n != "top_k" {
			out = append(out, n)
		}
	}
	return out
}

func (p *translating) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	p.mu.Lock()
	p.seen = append(p.seen, req)
	p.mu.Unlock()
	return p.fake.Chat(ctx, req)
}

func (p *translating) ChatStream(ctx context.Context, req *adapters.ChatRequest) (adapters.ChunkStream, error) {
	p.mu.Lock()
	p.seen = append(p.seen, req)
	p.mu.Unlock()
	return p.fake.ChatStream(ctx, req)
}

func TestDropParams(t *testing.T) {
	req := &adapters.ChatRequest{Model: "m", Messages: []adapters.Message{{Role: "user", Content: adapters.TextContent("hi")}},
		Extra: adapters.Fields{{Name: "top_k", Value: json.RawMessage(`5`)}, {Name: "verbosity", Value: json.RawMessage(`"low"`)},
			{Name: "chat_template_kwargs", Value: json.RawMessage(`{}`)}}}
	for _, tc := range []struct {
		name    string
		drop    DropParams
		stream  bool
		wantErr bool
	}{
		{name: "default refuses", drop: ""},
		{name: "error refuses", drop: DropParamsError},
		{name: "drop drops", drop: DropParamsDrop},
		{name: "drop drops on a stream", drop: DropParamsDrop, stream: true},
		{name: "error refuses a stream", drop: DropParamsError, stream: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claude := &translating{fake: &fake{name: "claude"}}
			backup := &fake{name: "backup"}
			e := New(Options{Providers: map[string]adapters.Provider{"claude": claude, "backup": backup},
				Resilience: map[string]Resilience{"claude": fast(), "backup": fast()},
				DropParams: map[string]DropParams{"claude": tc.drop}, Tracker: signals.New(0)})
			d := decide("claude", "backup")
			var (
				dropped []string
				err     error
			)
			if tc.stream {
				var sr *StreamResult
				if sr, err = e.OpenStream(context.Background(), req, d); err == nil {
					dropped = sr.Dropped
					sr.Stream.Close()
				}
			} else {
				var res *ChatResult
				if res, err = e.Chat(context.Background(), req, d); err == nil {
					dropped = res.Dropped
				}
			}
			if tc.drop != DropParamsDrop {
				var fe *FailedError
				ae := adapters.AsError(err)
				if !errors.As(err, &fe) || ae == nil || ae.Kind != adapters.KindBadRequest || ae.Code != CodeUnsupportedParameter ||
					ae.Param != "chat_template_kwargs" || ae.Provider != "claude" {
					t.Fatalf("err = %v, want a bad request naming the fields and the provider", err)
				}
				for _, want := range []string{"claude", "'chat_template_kwargs' and 'verbosity'", "drop_params: drop"} {
					if !strings.Contains(ae.Message, want) {
						t.Errorf("message %q does not say %q", ae.Message, want)
					}
				}
				if claude.calls.Load() != 0 || backup.calls.Load() != 0 {
					t.Errorf("calls: claude %d, backup %d; the request's fault is no upstream's", claude.calls.Load(), backup.calls.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(dropped, []string{"chat_template_kwargs", "verbosity"}) {
				t.Errorf("Dropped = %q", dropped)
			}
			if len(claude.seen) != 1 || !slices.Equal(claude.seen[0].ExtraNames(), []string{"top_k"}) {
				t.Errorf("claude was sent %v", claude.seen)
			}
			if len(req.Extra) != 3 {
				t.Error("the caller's request was changed")
			}
		})
	}
}

// A provider of the request's own protocol is sent every field, and nothing is dropped.
func TestNoDropForTheSameProtocol(t *testing.T) {
	var got *adapters.ChatRequest
	p := &recording{fake: &fake{name: "openai"}, last: &got}
	e := New(Options{Providers: map[string]adapters.Provider{"openai": p}, Resilience: map[string]Resilience{"openai": fast()},
		Tracker: signals.New(0)})
	req := &adapters.ChatRequest{Model: "m", Extra: adapters.Fields{{Name: "verbosity", Value: json.RawMessage(`"low"`)}}}
	res, err := e.Chat(context.Background(), req, decide("openai"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Dropped != nil || got == nil || len(got.Extra) != 1 {
		t.Errorf("dropped %q, sent %+v", res.Dropped, got)
	}
}

type recording struct {
	*fake
	last **adapters.ChatRequest
}

func (p *recording) Chat(ctx context.Context, req *adapters.ChatRequest) (*adapters.ChatResponse, error) {
	*p.last = req
	return p.fake.Chat(ctx, req)
}

// fixed is a translating provider that cannot express the named typed fields.
type fixed struct {
	*fake
	names []string
}

func (p *fixed) UnsupportedFields(req *adapters.ChatRequest) []string {
	return req.SetFields(p.names...)
}

// An advisory field (store) is dropped and named whatever drop_params says; one whose loss
// changes the answer (seed) is refused by default, and the refusal names only it.
func TestAdvisoryFieldsAreDroppedAndSaid(t *testing.T) {
	seed, store := int64(1), true
	for _, tc := range []struct {
		name    string
		req     adapters.ChatRequest
		drop    DropParams
		dropped []string
		refused string
	}{
		{name: "advisory only", req: adapters.ChatRequest{Store: &store}, dropped: []string{"store"}},
		{name: "lossy refused", req: adapters.ChatRequest{Store: &store, Seed: &seed}, refused: "'seed';"},
		{name: "lossy dropped", req: adapters.ChatRequest{Store: &store, Seed: &seed}, drop: DropParamsDrop, dropped: []string{"seed", "store"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got *adapters.ChatRequest
			p := &fixed{fake: &fake{name: "claude"}, names: []string{"seed", "store"}}
			rec := &recording{fake: p.fake, last: &got}
			prov := struct {
				*recording
				adapters.FieldTranslator
			}{rec, p}
			e := New(Options{Providers: map[string]adapters.Provider{"claude": prov}, Resilience: map[string]Resilience{"claude": fast()},
				DropParams: map[string]DropParams{"claude": tc.drop}, Tracker: signals.New(0)})
			req := tc.req
			req.Model = "m"
			res, err := e.Chat(context.Background(), &req, decide("claude"))
			if tc.refused != "" {
				ae := adapters.AsError(err)
				if ae == nil || ae.Code != CodeUnsupportedParameter || ae.Param != "seed" || !strings.Contains(ae.Message, tc.refused) {
					t.Fatalf("err = %v, want unsupported_parameter naming only seed", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Dropped, tc.dropped) || got == nil || got.Store != nil || got.Seed != nil {
				t.Errorf("Dropped %q, sent %+v", res.Dropped, got)
			}
			if req.Store == nil {
				t.Error("the caller's request was changed")
			}
		})
	}
}
