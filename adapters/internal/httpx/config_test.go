package httpx

import (
	"net/http"
	"strings"
	"testing"
)

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		raw, want, err string
	}{
		{"", "https://default.example/v1", ""},
		{" https://h.example/v1/ ", "https://h.example/v1", ""},
		{"ftp://h.example", "", "absolute http(s) URL"},
		{"https://h.example/?key=secret", "", "query or fragment"},
		{"https://user:pw@h.example\x7f", "", "not a valid URL"},
	} {
		got, err := BaseURL("x", "p", tc.raw, "https://default.example/v1/")
		if tc.err == "" && (err != nil || got != tc.want) {
			t.Errorf("%q: got %q, %v; want %q", tc.raw, got, err, tc.want)
		}
		if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "pw@")) {
			t.Errorf("%q: error %v, want one saying %q without the credentials", tc.raw, err, tc.err)
		}
	}
}

func TestAddHeaders(t *testing.T) {
	h := http.Header{}
	if err := AddHeaders("x", "p", h, map[string]string{"x-team": "search"}); err != nil || h.Get("X-Team") != "search" {
		t.Fatalf("extra header: %v %v", err, h)
	}
	for _, bad := range []map[string]string{{"content-type": "text/plain"}, {"bad name": "v"}, {"X-A": "line\nbreak"}} {
		if err := AddHeaders("x", "p", http.Header{}, bad); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

func TestClientOwnership(t *testing.T) {
	wrapped := 0
	wrap := func(rt http.RoundTripper) http.RoundTripper { wrapped++; return rt }
	own := OwnClient(nil)
	own.WrapTransport(wrap)
	theirs := OwnClient(&http.Client{})
	theirs.WrapTransport(wrap)
	theirs.CloseIdle()
	if wrapped != 1 {
		t.Errorf("wrapped %d transports, want only the provider's own", wrapped)
	}
}

func TestRawText(t *testing.T) {
	for raw, want := range map[string]string{
		`"rate_limit"`: "rate_limit", ` 429 `: "429", `-1.5`: "-1.5", `true`: "true",
		`null`: "", `{"a":1}`: "", `[1]`: "", ``: "", `"unterminated`: "", `12abc`: "",
	} {
		if got := RawText([]byte(raw)); got != want {
			t.Errorf("RawText(%q) = %q, want %q", raw, got, want)
		}
	}
}
