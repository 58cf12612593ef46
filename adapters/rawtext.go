package adapters

import (
	"bytes"
	"encoding/json"
	"strings"
)

// A passed-through answer is relayed as the upstream sent it and never decoded into the
// canonical types; the shadows of its request still compare their answers with its text.
// These read that text in the client's protocol, which is the answer's: they are about the
// public wire formats the Protocol constants name, not about any one provider.

// RawAnswerText is the text of a non-streamed answer in protocol's format: an Anthropic
// message's text blocks, a Responses response's output_text parts, joined; "" when it
// has none or does not decode.
func RawAnswerText(protocol string, body []byte) string {
	var sb strings.Builder
	switch protocol {
	case ProtocolAnthropic:
		var m struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		}
		if json.Unmarshal(body, &m) != nil {
			return ""
		}
		for _, b := range m.Content {
			if b.Type == "text" {
				sb.WriteString(b.Text)
			}
		}
	case ProtocolResponses:
		var r struct {
			Output []struct {
				Type    string `json:"type"`
				Content []struct {
					Type string `json:"type"`
					Text string `json:"text"`
				} `json:"content"`
			} `json:"output"`
		}
		if json.Unmarshal(body, &r) != nil {
			return ""
		}
		for _, it := range r.Output {
			if it.Type != "message" {
				continue
			}
			for _, p := range it.Content {
				if p.Type == "output_text" {
					sb.WriteString(p.Text)
				}
			}
		}
	}
	return sb.String()
}

var (
	anthropicTextDelta = []byte(`"text_delta"`)
	responsesTextDelta = []byte(`"response.output_text.delta"`)
)

// RawEventText is the answer text one streamed event in protocol's format carries: an
// Anthropic content_block_delta's text_delta, a Responses response.output_text.delta's
// delta; "" for any other event. Events that cannot be one are not decoded.
func RawEventText(protocol string, ev RawEvent) string {
	switch protocol {
	case ProtocolAnthropic:
		if !bytes.Contains(ev.Data, anthropicTextDelta) {
			return ""
		}
		var e struct {
			Type  string `json:"type"`
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}
		if json.Unmarshal(ev.Data, &e) != nil || e.Type != "content_block_delta" || e.Delta.Type != "text_delta" {
			return ""
		}
		return e.Delta.Text
	case ProtocolResponses:
		if !bytes.Contains(ev.Data, responsesTextDelta) {
			return ""
		}
		var e struct {
			Type  string `json:"type"`
			Delta string `json:"delta"`
		}
		if json.Unmarshal(ev.Data, &e) != nil || e.Type != "response.output_text.delta" {
			return ""
		}
		return e.Delta
	}
	return ""
}
