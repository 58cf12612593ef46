package floorproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gavel-gw/gavel/test/fakeupstream"
)

func TestRelay(t *testing.T) {
	up := fakeupstream.New()
	defer up.Close()
	srv := httptest.NewServer(New(up.URL(), "sk-floor"))
	defer srv.Close()

	tests := []struct {
		name     string
		body     string
		status   int
		want     string // substring of the relayed answer
		upstream int    // requests the upstream has seen after this case
	}{
		{"json", `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`, 200, `"chat.completion"`, 1},
		{"stream", `{"model":"m1","stream":true,"messages":[{"role":"user","content":"hi"}]}`, 200, "data: [DONE]", 2},
		{"not JSON", `{"model":`, 400, "bad request", 2},
		{"no model", `{"messages":[]}`, 400, "bad request", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.want) {
				t.Fatalf("status %d, body %q; want %d with %q", resp.StatusCode, b, tt.status, tt.want)
			}
			if n := up.Count("m1"); n != tt.upstream {
				t.Errorf("upstream saw %d requests, want %d", n, tt.upstream)
			}
		})
	}
	if got := up.Requests()[0].Header.Get("Authorization"); got != "Bearer sk-floor" {
		t.Errorf("Authorization upstream = %q", got)
	}
}
