package logical

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors a backend or the core returns; the HTTP layer maps them to status
// codes.
var (
	ErrPermissionDenied     = errors.New("permission denied")
	ErrUnsupportedPath      = errors.New("unsupported path")
	ErrUnsupportedOperation = errors.New("unsupported operation")
	ErrInvalidRequest       = errors.New("invalid request")
	ErrSealed               = errors.New("Vault is sealed")
)

// CodedError is an error with the HTTP status it should produce and a
// message for the client.
type CodedError struct {
	Code int
	Msg  string
}

func (e *CodedError) Error() string { return e.Msg }

// Errorf returns a CodedError with the given status.
func Errorf(code int, format string, args ...any) error {
	return &CodedError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 error with a message that names what is wrong.
func BadRequest(format string, args ...any) error {
	return Errorf(http.StatusBadRequest, format, args...)
}

// StatusOf returns the HTTP status for err.
func StatusOf(err error) int {
	var ce *CodedError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &ce):
		return ce.Code
	case errors.Is(err, ErrPermissionDenied):
		return http.StatusForbidden
	case errors.Is(err, ErrUnsupportedPath):
		return http.StatusNotFound
	case errors.Is(err, ErrUnsupportedOperation):
		return http.StatusMethodNotAllowed
	case errors.Is(err, ErrInvalidRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrSealed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
