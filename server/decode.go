package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBodyBytes is the largest request body the API accepts.
const MaxBodyBytes = 1 << 20

// decode reads the JSON object in r's body into dst. An empty body counts
// as {}. Unknown fields, trailing data after the object and bodies over
// MaxBodyBytes are rejected with an *Error naming the problem.
func decode(w http.ResponseWriter, r *http.Request, dst any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return errorf(CodeTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
		}
		return errorf(CodeInvalidRequest, "read request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		data = []byte("{}")
	}

	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return errorf(CodeInvalidRequest, "invalid JSON body: %s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(CodeInvalidRequest, "invalid JSON body: unexpected data after the JSON object; send exactly one object")
	}
	return nil
}

// describeJSONError turns a decoding error into a sentence for the client.
func describeJSONError(err error) string {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("syntax error at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Sprintf("the body must be a JSON object, not %s", typeErr.Value)
		}
		return fmt.Sprintf("field %q must be %s, not %s", typeErr.Field, jsonKind(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON object is cut short"
	}
	// encoding/json reports an unknown field as `json: unknown field "x"`
	// and has no error type for it.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown field %s; check the field names of this endpoint", name)
	}
	return err.Error()
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "float64":
		return "a number"
	case "map", "struct":
		return "an object"
	case "slice":
		return "an array"
	}
	return kind
}
