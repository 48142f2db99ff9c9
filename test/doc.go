// Package test holds the tests that need a real kernel: seccomp verdicts
// observed in processes (this file's package), and later the containers run
// by clawos-run and the engines.
//
// The seccomp tests re-execute the test binary as a child that applies a
// filter, makes one raw syscall and exits with the errno as its status, so a
// kill shows as SIGSYS and a DENY as its errno. They need no privilege
// (libseccomp sets no_new_privs) and run in every `go test ./...`.
package test
