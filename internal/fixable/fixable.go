package fixable

import (
	"errors"
	"fmt"
)

// Error is an error whose message already says what to change.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string {
	if e.msg == "" {
		return e.err.Error()
	}
	return e.msg
}

func (e *Error) Unwrap() error { return e.err }

// New returns a fixable error with a formatted message.
func New(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{msg: err.Error(), err: errors.Unwrap(err)}
}

// Wrap marks err as fixable; msg (may be empty) replaces its text for the user while err stays in the chain.
func Wrap(err error, msg string) error {
	if err == nil {
		return nil
	}
	return &Error{msg: msg, err: err}
}

// Is reports whether err (or anything it wraps) is fixable.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
