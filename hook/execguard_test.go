package hook

import (
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/runcargs"
)

// TestGuardExec checks when the hooks alone refuse a confined container
// because an exec into it would start under the container-level filter:
// exec processes with no_new_privs, or a filter that allows every
// privileged call runc makes without it; never an unconfined container.
func TestGuardExec(t *testing.T) {
	confined := func(allow ...string) *specs.Spec {
		return &specs.Spec{Annotations: map[string]string{runcargs.AnnotationAgentDigest: "sha256:x"},
			Linux: &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess,
				Syscalls: []specs.LinuxSyscall{{Names: allow, Action: specs.ActAllow}}}}}
	}
	privs := []string{"capget", "capset", "chdir", "faccessat2", "fstat", "getcwd", "getppid", "newfstatat", "setgid", "setgroups", "setuid"}
	for _, c := range []struct {
		name    string
		nnp     bool
		spec    *specs.Spec
		refused bool
	}{
		{"unconfined, no_new_privs", true, &specs.Spec{}, false},
		{"confined", false, confined("read", "write"), false},
		{"confined, no_new_privs", true, confined("read"), true},
		{"confined, all but capset", false, confined(privs[2:]...), false},
		{"confined, every privileged call", false, confined(privs...), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := GuardExec(c.nnp, c.spec)
			if (err != nil) != c.refused {
				t.Fatalf("GuardExec: %v, want refused %v", err, c.refused)
			}
			if err != nil && !errors.Is(err, clawerr.ErrPerm) {
				t.Errorf("not EPERM: %v", err)
			}
		})
	}
}
