package hook

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/translate"
)

// GuardExec refuses, for an engine that runs the hooks without the wrapper
// (podman's hooks.d), a confined container into which an exec (podman
// exec) would start a process under less than the agent's filter. No hook
// runs for an exec: runc starts the process under the container-level
// filter only, which holds the runtime's calls unconditionally (no
// clawos-init, no agent stage). Such an exec fails closed only because
// runc, when the process has no no_new_privs, loads that filter before it
// drops privileges and is then killed at the first privileged call the
// filter does not allow (capset, setuid, ... as measured: baseline
// runtime-runc-privs). So the container is refused when exec would get
// through: requested is the engine's config before Apply, whose
// process.noNewPrivileges an exec inherits (podman --security-opt
// no-new-privileges), and confined is the config after Apply, whose
// container-level filter must leave one of runc's privileged calls
// unallowed. The wrapper (clawos-runc as the engine's runtime) confines an
// exec exactly instead.
func GuardExec(requestedNNP bool, confined *specs.Spec) error {
	if confined.Annotations[runcargs.AnnotationAgentDigest] == "" {
		return nil // not confined
	}
	hint := "run the container with the clawos runtime (deploy/podman/containers.conf: clawos-runc confines an exec exactly), or without no-new-privileges"
	if requestedNNP {
		return &clawerr.Error{Code: clawerr.EPerm, Path: "process.noNewPrivileges",
			Message: "an exec into this container would run under the container-level filter only, not the agent's: with the hooks alone an exec is not confined, and with no_new_privileges runc would start it", Hint: hint}
	}
	arch := translate.NativeArch()
	privs, err := translate.Baseline(arch, "runtime-runc-privs")
	if err != nil {
		return fmt.Errorf("exec guard: %w", err)
	}
	plain, err := translate.Baseline(arch, "runtime-runc")
	if err != nil {
		return fmt.Errorf("exec guard: %w", err)
	}
	allowed := map[string]bool{}
	if s := confined.Linux; s != nil && s.Seccomp != nil {
		for _, r := range s.Seccomp.Syscalls {
			if r.Action == specs.ActAllow {
				for _, n := range r.Names {
					allowed[n] = true
				}
			}
		}
	}
	only := privilegedOnly(privs, plain)
	for _, c := range only {
		if !allowed[c] {
			return nil // runc dies at it: an exec never starts
		}
	}
	return &clawerr.Error{Code: clawerr.EPerm, Path: "syscalls",
		Message: "the whitelist allows every call runc makes when it starts an exec without no_new_privileges (" + strings.Join(only, ", ") + "): an exec into this container would run under the container-level filter only", Hint: hint}
}

// privilegedOnly are the calls of privs that plain does not have: what runc
// calls under the filter only when the process has no no_new_privs.
func privilegedOnly(privs, plain []translate.BaselineCall) []string {
	var out []string
	for _, c := range privs {
		if !slices.ContainsFunc(plain, func(p translate.BaselineCall) bool { return p.Name == c.Name }) {
			out = append(out, c.Name)
		}
	}
	return out
}
