// Package apparmor owns ClawOS's AppArmor profiles (P1.6): a small profile
// model rendered to AppArmor text deterministically, generation from a P1.2
// whitelist and the sandbox's mounts, the presets clawos-agent-loop,
// clawos-wasm-daemon and clawos-kernel-svc, compilation with the real
// apparmor_parser, and loading where the kernel has AppArmor.
//
// Rendering refuses what it cannot write safely (relative paths, unknown
// permissions, names with syntax characters) instead of emitting it, so
// nothing like the upstream specification's invalid "deny setuid," can
// come out; every profile the package generates is compiled by
// apparmor_parser in the tests.
package apparmor
