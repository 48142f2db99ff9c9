package errors

import (
	"encoding/json"
	stderrors "errors"
	"strings"
)

// Sentinels, one per code, for errors.Is. An *Error matches the sentinel of
// its code.
var (
	ErrAgain    = &Error{Code: EAgain, Message: "would block"}
	ErrIO       = &Error{Code: EIO, Message: "I/O failure"}
	ErrNotFound = &Error{Code: ENoEnt, Message: "not found"}
	ErrPerm     = &Error{Code: EPerm, Message: "permission denied"}
	ErrProto    = &Error{Code: EProto, Message: "protocol error"}
	ErrTimeout  = &Error{Code: ETimeout, Message: "timed out"}
	ErrInternal = &Error{Code: EInternal, Message: "internal error"}
	ErrPanic    = &Error{Code: EPanic, Message: "unrecoverable error"}
)

// Error is a failure with a P1.7 code. Path is the JSON path of the input
// field at fault (for example "syscalls[14].conditions.argument_filter.mask"),
// empty when the failure is not about one field. Err is the cause, reachable
// with errors.Unwrap, errors.Is and errors.As.
type Error struct {
	Code    Code
	Path    string
	Message string
	Hint    string
	Err     error
}

// New returns an *Error with the given code and message.
func New(code Code, msg string) *Error { return &Error{Code: code, Message: msg} }

// Wrap returns an *Error with the given code whose cause is err.
func Wrap(code Code, err error, msg string) *Error {
	return &Error{Code: code, Message: msg, Err: err}
}

// Error renders "<path>: <message>: <cause> (hint)" with the empty parts left
// out, on one line.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Message)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(e.Hint)
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes an *Error match the sentinel of its code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return isSentinel(t) && t.Code == e.Code
}

func isSentinel(e *Error) bool {
	switch e {
	case ErrAgain, ErrIO, ErrNotFound, ErrPerm, ErrProto, ErrTimeout, ErrInternal, ErrPanic:
		return true
	}
	return false
}

// CodeOf returns the P1.7 code of err: the code of the outermost *Error in
// its chain, Success for nil, and EInternal for an error that carries no
// code.
func CodeOf(err error) Code {
	if err == nil {
		return Success
	}
	var e *Error
	if stderrors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Severity of a P1.7 payload.
type Severity string

// The P1.7 severities.
const (
	SeverityWarning  Severity = "warning"
	SeverityError    Severity = "error"
	SeverityCritical Severity = "critical"
)

// Payload is the P1.7 error payload as it travels on the wire.
type Payload struct {
	ErrorCode    Code           `json:"error_code"`
	ErrorMessage string         `json:"error_message"`
	Component    string         `json:"component"`
	Severity     Severity       `json:"severity"`
	Context      map[string]any `json:"context,omitempty"`
}

// MarshalJSON writes error_code as its number, as P1.7 requires.
func (p Payload) MarshalJSON() ([]byte, error) {
	type wire struct {
		ErrorCode    int            `json:"error_code"`
		ErrorMessage string         `json:"error_message"`
		Component    string         `json:"component"`
		Severity     Severity       `json:"severity"`
		Context      map[string]any `json:"context,omitempty"`
	}
	return json.Marshal(wire{int(p.ErrorCode), p.ErrorMessage, p.Component, p.Severity, p.Context})
}

// UnmarshalJSON reads a numeric error_code.
func (p *Payload) UnmarshalJSON(b []byte) error {
	var w struct {
		ErrorCode    *int           `json:"error_code"`
		ErrorMessage string         `json:"error_message"`
		Component    string         `json:"component"`
		Severity     Severity       `json:"severity"`
		Context      map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.ErrorCode == nil {
		return New(EProto, "P1.7 payload has no error_code")
	}
	*p = Payload{Code(*w.ErrorCode), w.ErrorMessage, w.Component, w.Severity, w.Context}
	return nil
}

// PayloadOf builds the P1.7 payload that reports err on behalf of component.
// SUCCESS gets severity warning, EPANIC critical, every other code error.
func PayloadOf(component string, err error) Payload {
	code := CodeOf(err)
	p := Payload{ErrorCode: code, Component: component, Severity: SeverityError}
	if err != nil {
		p.ErrorMessage = err.Error()
	}
	switch code {
	case Success:
		p.Severity = SeverityWarning
	case EPanic:
		p.Severity = SeverityCritical
	}
	var e *Error
	if stderrors.As(err, &e) && e.Path != "" {
		p.Context = map[string]any{"path": e.Path}
	}
	return p
}
