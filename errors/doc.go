// Package errors owns the ClawOS P1.7 error codes: the nine codes of the IPC
// protocol, their names and descriptions, the errno a seccomp DENY returns for
// each, the exit status each program uses for it, the JSON error payload, and
// an error type that carries a code, a JSON path and a cause.
//
// It does not decide which code a failure gets: callers choose the code when
// they create an *Error, and classify errors later with the standard
// errors.Is (against the Err... sentinels) and errors.As (to *Error).
//
// The package is named errors because the project layout fixes the
// directory; import it under another name, for example
//
//	import clawerr "github.com/clawos/clawos-security/errors"
package errors
