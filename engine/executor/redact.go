package executor

import "github.com/gavel-gw/gavel/adapters"

// Redactor masks PII of the given types in text; engine/pii implements it. It returns the
// text unchanged (and unallocated) when there is nothing to mask.
type Redactor interface {
	Redact(text string, types []string) string
}

// redact returns a copy of the request's messages with PII masked in everything that
// leaves the gateway: message text, text parts, tool call arguments. Untouched messages
// are shared, not copied.
func redact(r Redactor, msgs []adapters.Message, types []string) []adapters.Message {
	out := msgs
	copied := false
	set := func(i int, m adapters.Message) {
		if !copied {
			out = append([]adapters.Message(nil), msgs...)
			copied = true
		}
		out[i] = m
	}
	for i, m := range msgs {
		changed := false
		if m.Content != nil {
			c := *m.Content
			if c.Parts == nil {
				if t := r.Redact(c.Text, types); t != c.Text {
					c.Text, changed = t, true
				}
			} else {
				parts := c.Parts
				for j, p := range c.Parts {
					if p.Type != "text" {
						continue
					}
					if t := r.Redact(p.Text, types); t != p.Text {
						if !changed {
							parts = append([]adapters.ContentPart(nil), c.Parts...)
							changed = true
						}
						parts[j].Text = t
					}
				}
				c.Parts = parts
			}
			if changed {
				m.Content = &c
			}
		}
		if len(m.ToolCalls) > 0 {
			calls := m.ToolCalls
			callsChanged := false
			for j, tc := range m.ToolCalls {
				if t := r.Redact(tc.Function.Arguments, types); t != tc.Function.Arguments {
					if !callsChanged {
						calls = append([]adapters.ToolCall(nil), m.ToolCalls...)
						callsChanged = true
					}
					calls[j].Function.Arguments = t
				}
			}
			if callsChanged {
				m.ToolCalls, changed = calls, true
			}
		}
		if changed {
			set(i, m)
		}
	}
	return out
}
