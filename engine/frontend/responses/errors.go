package responses

import (
	"fmt"
	"net/http"
)

// Error is a request the Responses API refuses before it reaches the policy: a 400 (or
// the Status set) with OpenAI's error code and the parameter at fault. The server writes
// it in OpenAI's error shape.
type Error struct {
	Status  int
	Code    string
	Param   string
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%d %s (%s): %s", e.Status, e.Code, e.Param, e.Message)
}

func invalid(param, format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_value", Param: param, Message: fmt.Sprintf(format, a...)}
}

func missing(param, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "missing_required_parameter", Param: param, Message: msg}
}

func unsupported(param, format string, a ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "unsupported_parameter", Param: param, Message: fmt.Sprintf(format, a...)}
}

// ErrHostedTools is the refusal of a request naming OpenAI's hosted tools (web_search,
// file_search, code_interpreter…) when the policy's target is not OpenAI's own Responses
// API: no other backend runs them, and dropping them would change what the model can do.
func ErrHostedTools(types []string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "hosted_tool_unsupported", Param: "tools",
		Message: fmt.Sprintf("Hosted tools %q run only on OpenAI's Responses API, and the policy routed this request to a target that translates it; "+
			"use function tools, or a policy that routes this model to an OpenAI provider.", types)}
}

// ErrNotFound is what a client is told about a response id it cannot see: another key's
// response looks exactly like one that never existed.
func ErrNotFound(param, id string) *Error {
	e := &Error{Status: http.StatusNotFound, Code: "not_found", Param: param,
		Message: fmt.Sprintf("Response with id '%s' not found.", id)}
	if param == "previous_response_id" {
		e.Status, e.Code = http.StatusBadRequest, "previous_response_not_found"
		e.Message = fmt.Sprintf("Previous response with id '%s' not found.", id)
	}
	return e
}
