package daemon

import (
	"errors"
	"fmt"

	"github.com/pmdaemon/pmdaemon/host/api"
	"github.com/pmdaemon/pmdaemon/host/ports"
)

// UserError is a request the daemon refuses as invalid; the API answers it 400.
type UserError struct{ msg string }

func (e *UserError) Error() string { return e.msg }

func userErr(format string, a ...any) error { return &UserError{fmt.Sprintf(format, a...)} }

// ConflictError is a request that clashes with what exists: an app or plugin of that name, a
// port another app or process holds. Asking again once the clash is gone may succeed, which an
// invalid request never will. The API answers it 409.
type ConflictError struct{ msg string }

func (e *ConflictError) Error() string { return e.msg }

func conflictErr(format string, a ...any) error { return &ConflictError{fmt.Sprintf(format, a...)} }

// portsErr is the error of a port allocation for n instances on spec: a spec too small for them
// is invalid; anything else (ports held by others, a range used up) is a conflict.
func portsErr(spec ports.Spec, n int, err error) error {
	if spec.CheckInstances(n) != nil {
		return &UserError{err.Error()}
	}
	return &ConflictError{err.Error()}
}

// NotFoundError is a target that names nothing.
type NotFoundError struct {
	Target string
	What   string // "process" when empty
}

func (e *NotFoundError) Error() string {
	what := e.What
	if what == "" {
		what = "process"
	}
	return fmt.Sprintf("%s '%s' not found", what, e.Target)
}

// apiError is err as the API answers it. Errors the daemon did not classify are its own
// failures (a file it could not write): internal.
func apiError(err error) *api.Error {
	var ue *UserError
	var ce *ConflictError
	var nf *NotFoundError
	code := api.CodeInternal
	switch {
	case errors.As(err, &nf):
		code = api.CodeNotFound
	case errors.As(err, &ce):
		code = api.CodeConflict
	case errors.As(err, &ue):
		code = api.CodeInvalid
	}
	return &api.Error{Code: code, Message: err.Error()}
}
