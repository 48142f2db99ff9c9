package translate_test

import (
	"strings"
	"testing"

	"github.com/clawos/clawos-security/internal/golden"
	"github.com/clawos/clawos-security/translate"
)

// TestSingleStage pins the kubelet profile of the reference whitelist and
// checks what it adds: exactly the runtime's measured calls the whitelist
// does not allow (with the privilege-dropping ones unless no_new_privs),
// never clawos-init's (seccomp, landlock_*).
func TestSingleStage(t *testing.T) {
	v := validator(t)
	wl, rep := v.Validate(readFile(t, "../examples/ironclaw.whitelist.json"), translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	opts := translate.Options{Arch: translate.ArchX8664, Baselines: []string{"start"}}
	for _, tc := range []struct {
		name       string
		noNewPrivs bool
		added      []string
		golden     string
	}{
		{"without no_new_privs", false, []string{"capget", "capset", "setgid", "setgroups", "setuid", "fstatfs", "getdents64"}, "ironclaw.x86_64.kubelet.json"},
		{"with no_new_privs", true, []string{"fstatfs", "getdents64"}, "ironclaw.x86_64.kubelet-nnp.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := translate.SingleStage(wl, opts, "runc", tc.noNewPrivs)
			if err != nil {
				t.Fatal(err)
			}
			b, err := p.SeccompJSON()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "golden/"+tc.golden, b)
			verdict := map[string]string{}
			for _, o := range p.Origins {
				verdict[o.Syscall] = o.Verdict
			}
			for _, name := range tc.added {
				if !strings.HasPrefix(verdict[name], "allow (single stage") {
					t.Errorf("%s: %q, want added for the runtime", name, verdict[name])
				}
			}
			for _, name := range []string{"seccomp", "landlock_create_ruleset", "landlock_restrict_self"} {
				if strings.HasPrefix(verdict[name], "allow") {
					t.Errorf("%s (clawos-init's) is allowed: %q", name, verdict[name])
				}
			}
			if tc.noNewPrivs && verdict["setuid"] != "" {
				t.Errorf("setuid with no_new_privs: %q", verdict["setuid"])
			}
			// The whitelist's own conditional rules stay conditional.
			if !strings.HasPrefix(verdict["socket"], "allow if") && !strings.Contains(verdict["socket"], "if") {
				t.Errorf("socket: %q", verdict["socket"])
			}
		})
	}
	if _, err := translate.SingleStage(wl, translate.Options{Arch: translate.ArchAArch64}, "runc", false); err == nil {
		t.Error("a runtime never measured on aarch64 was accepted")
	}
}
