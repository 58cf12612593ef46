package app

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// consoleCalls are the admin API calls the console's pages make.
var consoleCalls = []string{
	"/v1/gavel/decisions?limit=50", "/v1/gavel/decisions?limit=50&status=denied", "/v1/gavel/traffic?window=15m",
	"/v1/gavel/providers", "/v1/gavel/plan", "/v1/gavel/budgets", "/v1/gavel/experiments", "/v1/gavel/policy",
}

// BenchmarkChatCompletionWithConsole is BenchmarkChatCompletion (json) alone and while an
// operator's console polls every admin call it makes, one round every 5 ms (a page
// refreshes every 5 s: this is a thousand consoles): the admin API reads snapshots and
// holds no lock the request path waits on, so the request's p50 must not move beyond
// the CPU the console's own calls take.
//
//	go test -run '^$' -bench 'BenchmarkChatCompletionWithConsole' -benchmem -benchtime 2000x ./engine/app/
func BenchmarkChatCompletionWithConsole(b *testing.B) {
	cfg := benchConfig()
	cfg.DecisionLog.Keep = 20000
	b.Run("alone", func(b *testing.B) { benchHandlerWith(b, cfg, "/v1/chat/completions", benchBody, nil, nil) })
	b.Run("console", func(b *testing.B) {
		var calls atomic.Int64
		benchHandlerWith(b, cfg, "/v1/chat/completions", benchBody, nil, func(h http.Handler) func() {
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(5 * time.Millisecond)
				defer t.Stop()
				for {
					for _, path := range consoleCalls {
						w := httptest.NewRecorder()
						h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
						if w.Code != http.StatusOK {
							b.Errorf("%s: %d %s", path, w.Code, w.Body)
							return
						}
						calls.Add(1)
					}
					select {
					case <-stop:
						return
					case <-t.C:
					}
				}
			}()
			return func() {
				close(stop)
				wg.Wait()
				b.ReportMetric(float64(calls.Load()), "admin-calls")
			}
		})
	})
}
