package sse

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The pooled decoder must accept and refuse what json.Unmarshal does, event after event,
// and keep working after an event it refused.
func TestJSONDecoderMatchesUnmarshal(t *testing.T) {
	type ev struct {
		A string          `json:"a"`
		N *int            `json:"n"`
		R json.RawMessage `json:"r,omitempty"`
	}
	d := GetJSONDecoder()
	defer PutJSONDecoder(d)
	for _, data := range []string{
		`{"a":"x","n":1}`, `{"a":"y"}`, ` {"a":"z","r":[1,2]} `, `{"a":"x"} {"a":"y"}`, `{"a":`, `{"a":"after"}`,
		`{"a":"x"}]`, `[]`, `{"n":"nan"}`, `{"a":"\u00e9\n"}`, ``, `{"a":"last"}`,
	} {
		var got, want ev
		gotErr := d.Decode([]byte(data), &got)
		wantErr := json.Unmarshal([]byte(data), &want)
		if (gotErr == nil) != (wantErr == nil) {
			t.Errorf("%q: Decode err %v, Unmarshal err %v", data, gotErr, wantErr)
			continue
		}
		if wantErr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("%q: Decode = %+v, Unmarshal = %+v", data, got, want)
		}
	}
}
