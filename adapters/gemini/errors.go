package gemini

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/gavel-gw/gavel/adapters"
	"github.com/gavel-gw/gavel/adapters/internal/httpx"
)

// wireError is a google.rpc.Status reduced to the parts gavel keeps.
type wireError struct {
	Code       int // the HTTP status Google maps the failure to; 0 when absent
	Message    string
	Status     string // the canonical code name: RESOURCE_EXHAUSTED, INVALID_ARGUMENT…
	Reasons    []string
	RetryDelay time.Duration // google.rpc.RetryInfo.retryDelay
}

// parseErrorBody extracts an error from a body:
//
//	{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED","details":[…]}}
//
// or the same wrapped in an array, which is how streamGenerateContent without alt=sse
// (a proxy that dropped the query) reports it. ok is false when the body holds none.
func parseErrorBody(body []byte) (w wireError, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var arr []json.RawMessage
		if json.Unmarshal(body, &arr) != nil || len(arr) == 0 {
			return w, false
		}
		body = arr[0]
	}
	var env struct {
		Error json.RawMessage `json:"error"`
	}
	if json.Unmarshal(body, &env) != nil {
		return w, false
	}
	return parseErrorObject(env.Error)
}

// parseErrorObject reads the value of an "error" key. A bare string is accepted too, as
// some proxies in front of Google answer {"error":"…"}.
func parseErrorObject(raw json.RawMessage) (w wireError, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return w, false
	}
	if raw[0] == '"' {
		w.Message = httpx.RawText(raw)
		return w, true
	}
	var g googleError
	if raw[0] != '{' || json.Unmarshal(raw, &g) != nil {
		return w, false
	}
	w.Message = httpx.RawText(g.Message)
	w.Status = httpx.RawText(g.Status)
	if c, err := strconv.Atoi(httpx.RawText(g.Code)); err == nil && c > 0 && c < 1000 {
		w.Code = c
	}
	for _, d := range g.Details {
		var det errorDetail
		if json.Unmarshal(d, &det) != nil {
			continue
		}
		switch {
		case strings.HasSuffix(det.Type, "google.rpc.RetryInfo"):
			w.RetryDelay = parseProtoDuration(httpx.RawText(det.RetryDelay))
		case strings.HasSuffix(det.Type, "google.rpc.ErrorInfo"):
			if r := httpx.RawText(det.Reason); r != "" && len(w.Reasons) < 4 {
				w.Reasons = append(w.Reasons, r)
			}
		}
	}
	return w, true
}

// maxRetryDelay caps a RetryInfo delay: a broken or hostile value must not park the
// executor for days.
const maxRetryDelay = time.Hour

// parseProtoDuration reads a google.protobuf.Duration in JSON form: seconds with up to
// nine fractional digits and an "s" suffix ("12s", "0.5s", "1.000340012s"). Anything
// else, negative or zero gives 0; a delay beyond maxRetryDelay is capped.
func parseProtoDuration(s string) time.Duration {
	num, ok := strings.CutSuffix(strings.TrimSpace(s), "s")
	if !ok || num == "" || num[0] < '0' || num[0] > '9' {
		return 0
	}
	// The exact decimal form first, so nanoseconds are not lost to float rounding.
	whole, frac, _ := strings.Cut(num, ".")
	if sec, err := strconv.ParseUint(whole, 10, 64); err == nil && len(frac) <= 9 && allDigits(frac) {
		if sec >= uint64(maxRetryDelay/time.Second) {
			return maxRetryDelay
		}
		ns, _ := strconv.ParseUint((frac + "000000000")[:9], 10, 64)
		return time.Duration(sec)*time.Second + time.Duration(ns)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || !(f > 0) {
		return 0
	}
	if f >= maxRetryDelay.Seconds() {
		return maxRetryDelay
	}
	return time.Duration(f * float64(time.Second))
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// failed sets what a Google error body says of a failed response.
func (p *Provider) failed(e *adapters.Error, w wireError) {
	e.Code = p.Clean(errorCode(w), httpx.MaxCode)
	e.Message = p.Clean(w.Message, httpx.MaxMessage)
	if e.Status >= 400 || e.Status/100 == 2 {
		e.Kind = refineKind(e.Kind, w)
	}
	if e.RetryAfter == 0 {
		e.RetryAfter = w.RetryDelay
	}
}

// checkAnswer finds the error Gemini (or a proxy) may report in a 2xx answer.
func (p *Provider) checkAnswer(out any, _ []byte) *adapters.Error {
	var raw json.RawMessage
	switch a := out.(type) {
	case *generateResponse:
		raw = a.Error
	case *batchEmbedResponse:
		raw = a.Error
	}
	if w, ok := parseErrorObject(raw); ok {
		return p.streamError(w)
	}
	return nil
}

// streamError turns an error received with a 2xx status (inside a stream, or as the
// body of a 200) into an *adapters.Error. The code Google puts in it is the HTTP status
// it would have answered with, so it classifies like one; an unexplained failure is the
// server's.
func (p *Provider) streamError(w wireError) *adapters.Error {
	kind := adapters.KindServer
	if w.Code >= 400 && w.Code < 600 {
		kind = adapters.KindForStatus(w.Code)
	}
	e := p.EventError(refineKind(kind, w), errorCode(w), w.Message, "upstream sent an error")
	e.RetryAfter = w.RetryDelay
	return e
}

func errorCode(w wireError) string {
	if w.Status != "" {
		return w.Status
	}
	if w.Code != 0 {
		return strconv.Itoa(w.Code)
	}
	return ""
}

// refineKind lets the body sharpen the kind the HTTP status gave. Google's canonical
// status name is more precise than the HTTP status it maps to, so it decides when known.
func refineKind(k adapters.Kind, w wireError) adapters.Kind {
	if sk, ok := kindForStatusName(w.Status); ok {
		k = sk
	}
	for _, r := range w.Reasons {
		// Gemini answers a bad key with 400 INVALID_ARGUMENT; only the ErrorInfo reason
		// (API_KEY_INVALID, API_KEY_EXPIRED…) tells it from a bad request, and the
		// executor must try the next target rather than give up.
		if strings.HasPrefix(r, "API_KEY_") || r == "ACCESS_TOKEN_EXPIRED" || r == "SERVICE_DISABLED" {
			return adapters.KindAuth
		}
	}
	if k == adapters.KindBadRequest && isContextLength(w.Message) {
		return adapters.KindContextLength
	}
	return k
}

// kindForStatusName maps google.rpc.Code names.
//
// FAILED_PRECONDITION is what Gemini answers when the key's project cannot use the API
// from where it is called ("User location is not supported for the API use", "free tier
// is not available in your country"): no fault of the request, and another target may
// well serve it, so it is classified with the credential failures.
func kindForStatusName(s string) (adapters.Kind, bool) {
	switch s {
	case "RESOURCE_EXHAUSTED":
		return adapters.KindRateLimited, true
	case "UNAVAILABLE":
		return adapters.KindOverloaded, true
	case "UNAUTHENTICATED", "PERMISSION_DENIED", "FAILED_PRECONDITION":
		return adapters.KindAuth, true
	case "INVALID_ARGUMENT", "OUT_OF_RANGE", "ALREADY_EXISTS":
		return adapters.KindBadRequest, true
	case "NOT_FOUND":
		return adapters.KindNotFound, true
	case "DEADLINE_EXCEEDED":
		return adapters.KindTimeout, true
	case "INTERNAL", "UNKNOWN", "DATA_LOSS", "ABORTED", "CANCELLED":
		return adapters.KindServer, true
	}
	return 0, false
}

// isContextLength recognises Gemini's overlong prompt, an INVALID_ARGUMENT such as
// "The input token count (1234567) exceeds the maximum number of tokens allowed (1048576)."
func isContextLength(msg string) bool {
	m := strings.ToLower(msg)
	return strings.Contains(m, "exceeds the maximum number of tokens") ||
		(strings.Contains(m, "token count") && strings.Contains(m, "exceed"))
}
