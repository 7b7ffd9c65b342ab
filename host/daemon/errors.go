package daemon

import (
	"fmt"
)

// UserError is a request the daemon refuses; the API answers it with 4xx.
type UserError struct{ msg string }

func (e *UserError) Error() string { return e.msg }

func userErr(format string, a ...any) error { return &UserError{fmt.Sprintf(format, a...)} }

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
