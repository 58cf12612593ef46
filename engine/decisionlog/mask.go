package decisionlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// mask is one erase rule: a JSON pointer into the event, as OPA's system.log mask rules
// name them ("/input/caller/user").
type mask struct {
	pointer string
	parts   []string
}

// ValidateMask checks erase rules: JSON pointers (RFC 6901) under /input or /result, the
// parts of an event OPA lets a mask touch. It reports every bad rule.
func ValidateMask(pointers []string) error {
	var errs []error
	for _, p := range pointers {
		if _, err := parseMask([]string{p}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func parseMask(pointers []string) ([]mask, error) {
	out := make([]mask, 0, len(pointers))
	for _, p := range pointers {
		if p != "/input" && p != "/result" && !strings.HasPrefix(p, "/input/") && !strings.HasPrefix(p, "/result/") {
			return nil, fmt.Errorf("mask %q: want a JSON pointer under /input or /result", p)
		}
		parts := strings.Split(p[1:], "/")
		for i, s := range parts {
			parts[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
		}
		out = append(out, mask{pointer: p, parts: parts})
	}
	return out, nil
}

// applyMasks erases what the rules name and lists the rules that erased something in the
// event's "erased" array, as OPA does. It decodes the event into generic values, which is
// why the logger only calls it when rules are configured.
func applyMasks(line []byte, rules []mask) []byte {
	var ev map[string]any
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return line
	}
	var erased []string
	for _, m := range rules {
		if erase(ev, m.parts) {
			erased = append(erased, m.pointer)
		}
	}
	if len(erased) == 0 {
		return line
	}
	ev["erased"] = erased
	var buf bytes.Buffer
	buf.Grow(len(line))
	if err := json.NewEncoder(&buf).Encode(ev); err != nil {
		return line
	}
	return buf.Bytes()
}

// erase removes the member parts points at; it reports whether there was one. Array
// elements can be walked through by index but are not removed (that would renumber
// their siblings): the last part must name an object member.
func erase(doc map[string]any, parts []string) bool {
	var cur any = doc
	for i, p := range parts {
		last := i == len(parts)-1
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[p]
			if !ok {
				return false
			}
			if last {
				delete(v, p)
				return true
			}
			cur = next
		case []any:
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n >= len(v) || last {
				return false
			}
			cur = v[n]
		default:
			return false
		}
	}
	return false
}
