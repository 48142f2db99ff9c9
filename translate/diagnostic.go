package translate

import (
	"fmt"
	"sort"
	"strings"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Severity of a diagnostic.
type Severity string

// Severities. An error refuses the whitelist; a warning is reported and the
// whitelist is still used.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Diagnostic is one finding about a whitelist.
type Diagnostic struct {
	Severity Severity     `json:"severity"`
	Code     clawerr.Code `json:"code"`
	Path     string       `json:"path"`
	Check    string       `json:"check"`
	Message  string       `json:"message"`
	Hint     string       `json:"hint,omitempty"`
}

// String renders "error EPROTO syscalls[3].name: message (hint) [check]".
func (d Diagnostic) String() string {
	s := fmt.Sprintf("%s %s %s: %s", d.Severity, d.Code, displayPath(d.Path), d.Message)
	if d.Hint != "" {
		s += " (" + d.Hint + ")"
	}
	return s + " [" + d.Check + "]"
}

func displayPath(p string) string {
	if p == "" {
		return "(document)"
	}
	return p
}

// Report is the outcome of validating a whitelist: every finding of every
// check, sorted by path, errors before warnings at the same path.
type Report struct {
	Diagnostics []Diagnostic `json:"diagnostics"`
	// Signature is the state of the whitelist's signature, set when the
	// signature check ran (the document could be decoded).
	Signature SignatureState `json:"-"`
}

func (r *Report) add(d Diagnostic) { r.Diagnostics = append(r.Diagnostics, d) }

func (r *Report) errorf(code clawerr.Code, check, path, hint, format string, args ...any) {
	r.add(Diagnostic{SeverityError, code, path, check, fmt.Sprintf(format, args...), hint})
}

func (r *Report) warnf(code clawerr.Code, check, path, hint, format string, args ...any) {
	r.add(Diagnostic{SeverityWarning, code, path, check, fmt.Sprintf(format, args...), hint})
}

func (r *Report) sort() {
	sort.SliceStable(r.Diagnostics, func(i, j int) bool {
		a, b := r.Diagnostics[i], r.Diagnostics[j]
		if a.Path != b.Path {
			return pathLess(a.Path, b.Path)
		}
		return a.Severity == SeverityError && b.Severity != SeverityError
	})
}

// pathLess orders "syscalls[2]" before "syscalls[10]".
func pathLess(a, b string) bool {
	ka, kb := pathKey(a), pathKey(b)
	return ka < kb
}

func pathKey(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			j := strings.IndexByte(p[i:], ']')
			if j > 0 {
				fmt.Fprintf(&b, "[%08s]", p[i+1:i+j])
				i += j
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// Errors returns the diagnostics of severity error.
func (r Report) Errors() []Diagnostic { return r.filter(SeverityError) }

// Warnings returns the diagnostics of severity warning.
func (r Report) Warnings() []Diagnostic { return r.filter(SeverityWarning) }

func (r Report) filter(s Severity) []Diagnostic {
	var out []Diagnostic
	for _, d := range r.Diagnostics {
		if d.Severity == s {
			out = append(out, d)
		}
	}
	return out
}

// Err returns nil when the report has no error, and otherwise a
// *InvalidError listing every error.
func (r Report) Err() error {
	errs := r.Errors()
	if len(errs) == 0 {
		return nil
	}
	return &InvalidError{Diagnostics: errs}
}

// InvalidError refuses a whitelist. It unwraps to the *clawerr.Error of its
// first diagnostic, so errors.Is(err, clawerr.ErrPerm) and
// clawerr.CodeOf(err) classify it by that diagnostic's P1.7 code.
type InvalidError struct {
	Diagnostics []Diagnostic
}

func (e *InvalidError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid whitelist: %d error(s)", len(e.Diagnostics))
	for _, d := range e.Diagnostics {
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

// Unwrap returns the first diagnostic as a *clawerr.Error.
func (e *InvalidError) Unwrap() error {
	d := e.Diagnostics[0]
	return &clawerr.Error{Code: d.Code, Path: d.Path, Message: d.Message, Hint: d.Hint}
}
