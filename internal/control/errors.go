package control

import (
	"errors"
	"fmt"
	"net/http"
)

// BadRequestf returns an error that matches ErrBadRequest and whose text is the message alone
// (no "bad request: " in front): what a Service returns when the caller asked for something
// that cannot be done.
func BadRequestf(format string, args ...any) error {
	return &kindError{kind: ErrBadRequest, msg: fmt.Sprintf(format, args...)}
}

// NotFoundf returns an error that matches ErrNotFound and whose text is the message alone.
func NotFoundf(format string, args ...any) error {
	return &kindError{kind: ErrNotFound, msg: fmt.Sprintf(format, args...)}
}

type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// ServerError is an error reply of the daemon as the Client returns it. It matches ErrBadRequest
// (status 400 or 413) or ErrNotFound (404) with errors.Is; its text is the daemon's message.
type ServerError struct {
	Status  int    // the HTTP status
	Message string // the daemon's message
}

func (e *ServerError) Error() string { return e.Message }

// Unwrap returns the sentinel of the status class, or nil for a server fault.
func (e *ServerError) Unwrap() error {
	switch e.Status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		return ErrBadRequest
	case http.StatusNotFound:
		return ErrNotFound
	}
	return nil
}

// clientError is an error of the client side whose text is one sentence for the user, matching
// a sentinel (ErrNotRunning, fs.ErrPermission) underneath.
type clientError struct {
	msg string
	err error
}

func (e *clientError) Error() string { return e.msg }
func (e *clientError) Unwrap() error { return e.err }

// statusOf chooses the HTTP status for a Service error.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// httpError is an error of the protocol itself (wrong method, body too large).
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }
