package test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/openai/openai-go/v3/option"

	"github.com/gavel-gw/gavel/engine/policy"
	"github.com/gavel-gw/gavel/test/fakeupstream"
)

// TestHotSwapUnderLoad swaps the policy bundle 20 times while clients keep sending
// streamed and non-streamed requests. No request may fail, and every answer must come
// from the route its own revision chose: a request that started on one revision finishes
// on it, even when the next revision routes elsewhere.
func TestHotSwapUnderLoad(t *testing.T) {
	yaml := "providers:\n"
	for _, n := range []string{"a", "b"} {
		up := fakeupstream.New()
		t.Cleanup(up.Close)
		// A little upstream latency keeps requests in flight across activations.
		up.SetDefault("m1", fakeupstream.Step{Latency: 5 * time.Millisecond})
		yaml += fmt.Sprintf("  - {name: %s, type: openai, base_url: %q, api_key: k, max_retries: 0}\n", n, up.URL())
	}
	// Even revisions route alias "chat" to a/m1 only, odd ones to b/m1 only.
	const swaps = 20
	revs := make([]string, swaps+1)
	bundles := make([]string, swaps+1)
	for i := range revs {
		data := twoProviders(nil)
		only := "a/m1"
		if i%2 == 1 {
			only = "b/m1"
		}
		data["aliases"].(map[string]any)["chat"] = map[string]any{"strategy": "ordered", "candidates": []string{only}}
		revs[i] = fmt.Sprintf("swap-%02d", i)
		bundles[i] = bundle(t, revs[i], data)
	}
	g := start(t, "policy: "+bundles[0]+"\n"+yaml, nil)
	c := g.client("k")

	var ok, failed atomic.Int64
	var mu sync.Mutex
	seen := map[string]int{}
	var errs []string
	record := func(resp *http.Response, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed.Add(1)
			if len(errs) < 5 {
				errs = append(errs, err.Error())
			}
			return
		}
		rev, route := resp.Header.Get("X-Gavel-Bundle-Revision"), resp.Header.Get("X-Gavel-Route")
		var n int
		fmt.Sscanf(strings.TrimPrefix(rev, "swap-"), "%d", &n)
		want := "a/m1"
		if n%2 == 1 {
			want = "b/m1"
		}
		if route != want {
			failed.Add(1)
			errs = append(errs, fmt.Sprintf("revision %s answered by %s, want %s", rev, route, want))
			return
		}
		seen[rev]++
		ok.Add(1)
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for ctx.Err() == nil {
				var resp *http.Response
				if w%2 == 0 {
					_, err := c.Chat.Completions.New(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
					record(resp, err)
					continue
				}
				s := c.Chat.Completions.NewStreaming(context.Background(), userParams("chat", "hi"), option.WithResponseInto(&resp))
				chunks := 0
				for s.Next() {
					chunks++
				}
				err := s.Err()
				if err == nil && chunks == 0 {
					err = fmt.Errorf("stream without chunks")
				}
				record(resp, err)
			}
		}(w)
	}

	eng := g.gw.Engine()
	for i := 1; i <= swaps; i++ {
		time.Sleep(40 * time.Millisecond)
		b, err := policy.LoadPath(bundles[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Activate(context.Background(), b, bundles[i]); err != nil {
			t.Fatalf("swap %d: %v", i, err)
		}
	}
	time.Sleep(40 * time.Millisecond)
	stop()
	wg.Wait()

	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed across %d swaps: %v", failed.Load(), failed.Load()+ok.Load(), swaps, errs)
	}
	if got := eng.Active().ID; got != revs[swaps] {
		t.Errorf("active revision %s, want %s", got, revs[swaps])
	}
	if len(seen) < swaps/2 {
		t.Errorf("requests saw only %d of %d revisions (%v): the load did not span the swaps", len(seen), swaps+1, seen)
	}
	t.Logf("%d requests, %d revisions served, 0 failures", ok.Load(), len(seen))
}
