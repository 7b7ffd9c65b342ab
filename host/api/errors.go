package api

import (
	"errors"
	"net/http"
)

// Code is the stable, machine-readable kind of an API error. Messages are for people and may
// be reworded; codes are for programs and are not.
type Code string

const (
	// CodeNotFound: the target (app, instance id, plugin, route) names nothing.
	CodeNotFound Code = "not_found"
	// CodeConflict: the request clashes with what exists (an app or plugin of that name, a
	// port another holds).
	CodeConflict Code = "conflict"
	// CodeInvalid: the request itself is wrong (bad JSON, a bad value, a limit passed).
	CodeInvalid Code = "invalid"
	// CodeTooLarge: the request body is over the daemon's limit.
	CodeTooLarge Code = "too_large"
	// CodeUnavailable: the daemon cannot take the request now (it is shutting down or handing
	// over); asking again later, of the next daemon, may succeed.
	CodeUnavailable Code = "unavailable"
	// CodeInternal: the daemon failed (a file it could not write).
	CodeInternal Code = "internal"
	// CodeUnauthorized: a request to the web listener without a valid token.
	CodeUnauthorized Code = "unauthorized"
	// CodeForbidden: a read token asking for a route that needs an admin token.
	CodeForbidden Code = "forbidden"
)

// Status is the HTTP status the daemon answers a code with.
func (c Code) Status() int {
	switch c {
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeInvalid:
		return http.StatusBadRequest
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// CodeOfStatus is the code of an HTTP error status: what an answer that carries no code (from
// a daemon older than codes) meant.
func CodeOfStatus(status int) Code {
	switch status {
	case http.StatusNotFound:
		return CodeNotFound
	case http.StatusConflict:
		return CodeConflict
	case http.StatusRequestEntityTooLarge:
		return CodeTooLarge
	case http.StatusServiceUnavailable:
		return CodeUnavailable
	case http.StatusUnauthorized:
		return CodeUnauthorized
	case http.StatusForbidden:
		return CodeForbidden
	}
	if status >= 400 && status < 500 {
		return CodeInvalid
	}
	return CodeInternal
}

// Error is the body of every non-2xx answer, and the error the client returns for it.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Legacy repeats Message under the key daemons before 0.2.0 used, so that an older CLI
	// talking to this daemon still shows the message rather than a bare status.
	Legacy string `json:"error,omitempty"`
	// Status is the HTTP status it came with (client side only).
	Status int `json:"-"`
}

func (e *Error) Error() string { return e.Message }

// ErrorCode is the code of the API error in err's chain, or "" when err is not one.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// IsNotFound reports whether err is the daemon saying the target names nothing.
func IsNotFound(err error) bool { return ErrorCode(err) == CodeNotFound }

// IsConflict reports whether err is the daemon refusing a request that clashes with what
// exists.
func IsConflict(err error) bool { return ErrorCode(err) == CodeConflict }

// IsInvalid reports whether err is the daemon refusing a malformed or out-of-bounds request
// (a body over the size limit included).
func IsInvalid(err error) bool {
	c := ErrorCode(err)
	return c == CodeInvalid || c == CodeTooLarge
}

// IsUnavailable reports whether err is the daemon unable to take requests now.
func IsUnavailable(err error) bool { return ErrorCode(err) == CodeUnavailable }

// IsRemote reports whether err is an answer from the daemon (any code), as opposed to no
// daemon, a lost connection or a bad request built by the client.
func IsRemote(err error) bool { return ErrorCode(err) != "" }
