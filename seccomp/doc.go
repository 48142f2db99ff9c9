// Package seccomp owns seccomp filters: it builds a libseccomp filter from an
// OCI linux.seccomp section (the way runc does, so that what we test is what
// runc loads), applies it to the calling process with TSYNC so that every Go
// thread is covered, exports the BPF program (raw bytes and a listing),
// evaluates an exported program in userspace for (arch, syscall, args), and
// supervises a filter's user notifications (TakeListener, Supervise: how
// clawos-run --learn and --complain see the calls of a sandboxed agent).
//
// It does not decide policy: package translate turns a P1.2 whitelist into
// the OCI section this package consumes.
//
// Lifetime caveat: a filter applied with Apply can never be removed from the
// process or its children.
package seccomp
