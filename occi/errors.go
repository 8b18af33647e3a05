package occi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/houssem/cmbs/store"
)

// Error is a failure with an HTTP meaning. Handlers, validation and providers
// return it; writeError is the one place that turns errors into responses.
type Error struct {
	Status int
	// Field names the offending field or attribute when there is one.
	Field  string
	Detail string
	// Allow lists the methods a 405 answer names in its Allow header.
	Allow string
	// RetryAfter, when positive, is the Retry-After (seconds) of a 503.
	RetryAfter int
	// Err is the underlying cause, kept for logs and errors.Is.
	Err error
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Detail)
	}
	return e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error with a formatted detail.
func Errorf(status int, field, format string, args ...any) *Error {
	return &Error{Status: status, Field: field, Detail: fmt.Sprintf(format, args...)}
}

// BadRequest reports invalid input about field.
func BadRequest(field, format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, field, format, args...)
}

// NotFound reports a missing entity, category or path.
func NotFound(field, format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, field, format, args...)
}

// Conflict reports a clash with what is stored.
func Conflict(field, format string, args ...any) *Error {
	return Errorf(http.StatusConflict, field, format, args...)
}

// tooLarge refuses a request body over the size limit.
func tooLarge(limit int64) *Error {
	return Errorf(http.StatusRequestEntityTooLarge, "", "the request body is larger than %d bytes, the most this server accepts (max_message_bytes)", limit)
}

// Problem is the application/problem+json body (RFC 9457) of every error.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Field  string `json:"field,omitempty"`
}

// statusOf maps any error to its HTTP status: occi errors carry their own,
// store sentinels have fixed meanings, everything else is a server fault.
func statusOf(err error) int {
	var oe *Error
	switch {
	case errors.As(err, &oe):
		return oe.Status
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrClosed):
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// RetryAfterSeconds is the Retry-After of a 503: how long a client should
// wait before trying again while the store is unreachable.
const RetryAfterSeconds = 5

// setStatusHeaders sets what an error answer carries besides its body:
// Allow for a 405, Retry-After for a 503.
func setStatusHeaders(w http.ResponseWriter, err error, status int) {
	var oe *Error
	isOE := errors.As(err, &oe)
	if isOE && oe.Allow != "" {
		w.Header().Set("Allow", oe.Allow)
	}
	switch {
	case isOE && oe.RetryAfter > 0:
		w.Header().Set("Retry-After", strconv.Itoa(oe.RetryAfter))
	case status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
}

// ProblemOf describes err as a problem body.
func ProblemOf(err error) Problem {
	status := statusOf(err)
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status}
	var oe *Error
	switch {
	case errors.As(err, &oe):
		p.Detail, p.Field = oe.Detail, oe.Field
	case status == http.StatusConflict:
		p.Detail = "the document changed concurrently; retry the request"
	case status == http.StatusServiceUnavailable:
		p.Detail = fmt.Sprintf("the store cannot be reached; nothing was changed; retry in %d seconds", RetryAfterSeconds)
	case status == http.StatusInternalServerError:
		p.Detail = "internal error; see the server log"
	default:
		p.Detail = err.Error()
	}
	return p
}

// WriteProblem writes err as application/problem+json.
func WriteProblem(w http.ResponseWriter, err error) {
	p := ProblemOf(err)
	setStatusHeaders(w, err, p.Status)
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}
