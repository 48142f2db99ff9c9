// Package translate owns the ClawOS P1.2 syscall whitelist: its Go model,
// loading, validation (the embedded P1.2 JSON Schema first, then the semantic
// checks and lints the schema cannot express), the canonical form and
// signature, the measured start-up baselines, and translation into the OCI
// runtime-spec linux.seccomp section plus the network policy that carries
// port restrictions out of seccomp.
//
// It does not build or load BPF programs (package seccomp does) and it does
// not run anything. Every function is pure: the same input gives
// byte-identical output.
package translate
