package errors

import (
	"fmt"
	"sort"
	"syscall"
)

// Code is a P1.7 error code.
type Code int

// The nine P1.7 codes.
const (
	Success   Code = 0 // done
	EAgain    Code = 1 // would block, retry with backoff
	EIO       Code = 2 // I/O failure
	ENoEnt    Code = 3 // entity not found
	EPerm     Code = 4 // permission denied, policy violation
	EProto    Code = 5 // protocol error: bad message or version
	ETimeout  Code = 6 // no answer in time
	EInternal Code = 7 // unexpected internal condition, log and escalate
	EPanic    Code = 8 // unrecoverable, trigger rollback
)

// codeInfo is one row of the P1.7 table (shared/spec/README.md).
type codeInfo struct {
	name        string
	description string
	// errno is what a seccomp DENY carrying this code returns; 0 means the
	// code has no errno and cannot be used for a DENY.
	errno syscall.Errno
	// exit is the exit status of every clawos program that fails with
	// this code. 1 and 2 are left to generic failures and usage errors, as
	// is common for Unix tools; 126-165 stay free for the exit status of an
	// agent that a launcher passes through (159 = killed by SIGSYS).
	exit int
}

// codes is the P1.7 table. It is the only place the mapping is written down;
// every lookup goes through it, and a test walks every key.
var codes = map[Code]codeInfo{
	Success:   {"SUCCESS", "done", 0, 0},
	EAgain:    {"EAGAIN", "would block, retry with backoff", syscall.EAGAIN, 11},
	EIO:       {"EIO", "I/O failure", syscall.EIO, 12},
	ENoEnt:    {"ENOENT", "entity not found", syscall.ENOENT, 13},
	EPerm:     {"EPERM", "permission denied, policy violation", syscall.EPERM, 14},
	EProto:    {"EPROTO", "protocol error: bad message or version", syscall.EPROTO, 15},
	ETimeout:  {"ETIMEOUT", "no answer in time", syscall.ETIMEDOUT, 16},
	EInternal: {"EINTERNAL", "unexpected internal condition, log and escalate", 0, 17},
	EPanic:    {"EPANIC", "unrecoverable, trigger rollback", 0, 18},
}

// KnownCodes lists every P1.7 code in ascending order.
func KnownCodes() []Code {
	out := make([]Code, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Valid reports whether c is one of the nine P1.7 codes.
func (c Code) Valid() bool { _, ok := codes[c]; return ok }

// String returns the P1.7 name of the code, for example "EPERM".
func (c Code) String() string {
	if i, ok := codes[c]; ok {
		return i.name
	}
	return fmt.Sprintf("Code(%d)", int(c))
}

// Description returns the P1.7 meaning of the code.
func (c Code) Description() string { return codes[c].description }

// Errno returns the errno that a seccomp DENY with this code returns, and
// false for codes that have none (SUCCESS, EINTERNAL, EPANIC).
func (c Code) Errno() (syscall.Errno, bool) {
	i, ok := codes[c]
	return i.errno, ok && i.errno != 0
}

// ExitStatus is the exit status a clawos program uses when it fails with c.
// Unknown codes map to 1.
func (c Code) ExitStatus() int {
	if i, ok := codes[c]; ok {
		return i.exit
	}
	return 1
}

// ParseCode accepts a P1.7 name ("EPERM") and returns its code.
func ParseCode(name string) (Code, error) {
	for c, i := range codes {
		if i.name == name {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown P1.7 code name %q", name)
}

// MarshalText writes the code as its name, so that maps and logs read well.
func (c Code) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText reads a code's name (MarshalText) back; an unknown name is
// an error.
func (c *Code) UnmarshalText(b []byte) error {
	v, err := ParseCode(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}
