package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/assertd/assertd/engine"
	"github.com/assertd/assertd/store"
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError is the body of every JSON error: what went wrong and, for bad
// input, which field.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, field, msg string) {
	writeJSON(w, status, apiError{Error: msg, Field: field})
}

// badInput is an error about one field of the input.
type badInput struct {
	field, msg string
}

func (b badInput) Error() string { return b.field + ": " + b.msg }

func fieldErr(field, format string, args ...any) error {
	return badInput{field: field, msg: fmt.Sprintf(format, args...)}
}

// bodyErrorStatus is 413 for a body over the bound, else 400.
func bodyErrorStatus(err error) int {
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// decodeJSON reads one JSON object into v, refusing unknown fields and
// trailing data. Errors are badInput naming the field, or a body error.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			return fieldErr("body", "one JSON object is expected; there is more after it")
		}
		return nil
	}
	var (
		mb  *http.MaxBytesError
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mb):
		return err
	case errors.As(err, &syn):
		return fieldErr("body", "invalid JSON at byte %d: %v", syn.Offset, syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return fieldErr(field, "expected %s, got JSON %s", typ.Type, typ.Value)
	case errors.Is(err, io.EOF):
		return fieldErr("body", "a JSON object is required")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fieldErr(name, "unknown field")
	}
	var bi badInput
	if errors.As(err, &bi) {
		return bi
	}
	return fieldErr("body", "%v", err)
}

// errStatus maps an error to a status, field and message.
func errStatus(err error) (int, string, string) {
	var bi badInput
	switch {
	case errors.As(err, &bi):
		return http.StatusBadRequest, bi.field, bi.Error()
	case bodyErrorStatus(err) == http.StatusRequestEntityTooLarge:
		return http.StatusRequestEntityTooLarge, "body", fmt.Sprintf("the body is larger than %d bytes", MaxBody)
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "", err.Error()
	case errors.Is(err, store.ErrInvalid):
		return http.StatusBadRequest, "", err.Error()
	case errors.Is(err, store.ErrConflict), errors.Is(err, engine.ErrNotEscalated):
		return http.StatusConflict, "", err.Error()
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, "", err.Error()
	}
	return http.StatusInternalServerError, "", err.Error()
}

// apiFail writes err as a JSON error.
func (s *server) apiFail(w http.ResponseWriter, r *http.Request, err error) {
	status, field, msg := errStatus(err)
	if status >= 500 {
		s.log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeError(w, status, field, msg)
}
