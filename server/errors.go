package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error codes sent in the body of every error response.
const (
	CodeInvalidRequest   = "invalid_request"
	CodeUnauthorized     = "unauthorized"
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeConflict         = "conflict"
	CodeTooLarge         = "too_large"
	CodeInternal         = "internal"
	CodeUnavailable      = "unavailable"
)

// statusByCode maps each error code to its HTTP status. A code missing here
// is sent as 500.
var statusByCode = map[string]int{
	CodeInvalidRequest:   http.StatusBadRequest,
	CodeUnauthorized:     http.StatusUnauthorized,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodeTooLarge:         http.StatusRequestEntityTooLarge,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

// Error is an API error: a code from the list above and a message that is
// safe to show to the client. Handlers return it; writeError turns it into
// a response.
type Error struct {
	Code    string
	Message string
	// Err, when set, is the cause. It is logged but never sent, so it may
	// carry details (paths, SQL) that the message leaves out.
	Err error
}

// Error returns the message, followed by the cause when there is one.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status returns the HTTP status of the error's code.
func (e *Error) Status() int {
	if status, ok := statusByCode[e.Code]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// errorf returns an *Error with a formatted message.
func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// internalError wraps an unexpected failure. The client sees only msg.
func internalError(msg string, err error) *Error {
	return &Error{Code: CodeInternal, Message: msg, Err: err}
}

// asAPIError returns err as an *Error, turning any other error into an
// internal one whose message does not leak the cause.
func asAPIError(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	return internalError("internal error", err)
}

// errorBody is the JSON shape of every error response:
// {"error":{"code":"not_found","message":"..."}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeError writes err as a JSON error response, with the headers its
// status calls for, and logs it: 5xx at error level, the rest at debug.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	apiErr := asAPIError(err)
	status := apiErr.Status()
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cliq"`)
	}
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path,
			"status", status, "error", apiErr.Error())
	} else {
		s.log.Debug("request rejected", "method", r.Method, "path", r.URL.Path,
			"status", status, "code", apiErr.Code, "message", apiErr.Message)
	}
	writeJSON(w, status, errorBody{Error: errorDetail{Code: apiErr.Code, Message: apiErr.Message}})
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		// Only response types of this package are encoded, so a failure
		// is a programming error. A fixed body is better than none.
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":"internal","message":"encode response failed"}}`)
	}
	writeJSONBytes(w, status, append(data, '\n'))
}

// writeJSONBytes writes an already encoded JSON response.
func writeJSONBytes(w http.ResponseWriter, status int, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(data)
}
