package adapters

import "testing"

func TestRawAnswerText(t *testing.T) {
	for _, tc := range []struct{ name, protocol, body, want string }{
		{"anthropic text and tool use", ProtocolAnthropic, `{"type":"message","content":[{"type":"thinking","thinking":"hm","signature":"s"},` +
			`{"type":"text","text":"Paris "},{"type":"tool_use","id":"t","name":"n","input":{}},{"type":"text","text":"is it."}]}`, "Paris is it."},
		{"responses message and call", ProtocolResponses, `{"object":"response","output":[{"type":"reasoning","summary":[]},` +
			`{"type":"message","content":[{"type":"output_text","text":"Paris","annotations":[]},{"type":"refusal","refusal":"no"}]},` +
			`{"type":"function_call","arguments":"{}","call_id":"c","name":"n"}]}`, "Paris"},
		{"not JSON", ProtocolAnthropic, `{"content":`, ""},
		{"unknown protocol", "openai", `{"content":[{"type":"text","text":"x"}]}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RawAnswerText(tc.protocol, []byte(tc.body)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRawEventText(t *testing.T) {
	for _, tc := range []struct{ name, protocol, data, want string }{
		{"anthropic text delta", ProtocolAnthropic, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Pa\"ris"}}`, `Pa"ris`},
		{"anthropic json delta", ProtocolAnthropic, `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\"text_delta\""}}`, ""},
		{"anthropic thinking", ProtocolAnthropic, `{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"text_delta"}}`, ""},
		{"responses text delta", ProtocolResponses, `{"type":"response.output_text.delta","item_id":"m","output_index":0,"content_index":0,"delta":"Paris","sequence_number":4}`, "Paris"},
		{"responses arguments", ProtocolResponses, `{"type":"response.function_call_arguments.delta","delta":"response.output_text.delta"}`, ""},
		{"responses created", ProtocolResponses, `{"type":"response.created","response":{}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := RawEventText(tc.protocol, RawEvent{Data: []byte(tc.data)}); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
