package translate_test

import (
	"strings"
	"testing"

	"github.com/clawos/clawos-security/internal/golden"
	"github.com/clawos/clawos-security/seccomp"
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

// TestExecStart checks the start-only exec mode: where the whitelist does
// not allow execve (unlisted or DENY), the agent stage allows execve only
// with clawos-init's secret pathname pointer and kills every other, while
// the container stage still lets clawos-init (and the runtime) exec; a
// whitelist that allows execve keeps its own rule.
func TestExecStart(t *testing.T) {
	const start = 0x5a5a_1234_5000
	v := validator(t)
	execve, _ := translate.ArchX8664.SyscallNumber("execve")
	for _, tc := range []struct {
		name     string
		file     string
		mutate   func(*translate.Whitelist)
		wantOnly bool // execve allowed only at start
	}{
		{"unlisted", "../examples/ironclaw.whitelist.json", nil, true},
		{"DENY", "../examples/ironclaw.whitelist.json", func(wl *translate.Whitelist) {
			wl.Syscalls = append(wl.Syscalls, translate.Rule{Name: "execve", Permission: translate.Deny})
		}, true},
		{"ALLOW", "../examples/ironclaw.whitelist.json", func(wl *translate.Whitelist) {
			wl.Syscalls = append(wl.Syscalls, translate.Rule{Name: "execve", Permission: translate.Allow})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wl, rep := v.Validate(readFile(t, tc.file), translate.Options{})
			if err := rep.Err(); err != nil {
				t.Fatal(err)
			}
			if tc.mutate != nil {
				tc.mutate(wl)
			}
			st, err := translate.TwoStage(wl, translate.Options{Arch: translate.ArchX8664, ExecStart: start, Baselines: []string{"start"}}, "runc")
			if err != nil {
				t.Fatal(err)
			}
			verdict := func(p *translate.Profile, arg0 uint64) seccomp.Verdict {
				prog, err := seccomp.Compile(p.Seccomp)
				if err != nil {
					t.Fatal(err)
				}
				ev, err := seccomp.NewEvaluator(prog)
				if err != nil {
					t.Fatal(err)
				}
				return ev.Evaluate(seccomp.Input{Arch: translate.ArchX8664.Audit(), Nr: int32(execve), Args: [6]uint64{arg0}})
			}
			if v := verdict(st.Agent, start); v.Action() != seccomp.RetAllow {
				t.Errorf("agent stage, clawos-init's execve: %v", v)
			}
			for _, other := range []uint64{start + 8, start - 8, 0x400000, start | 1<<63, 0} {
				v := verdict(st.Agent, other)
				if tc.wantOnly && v.Action() != seccomp.RetKillProcess {
					t.Errorf("agent stage, execve with pathname %#x: %v, want a kill", other, v)
				}
				if !tc.wantOnly && v.Action() != seccomp.RetAllow {
					t.Errorf("agent stage, execve allowed by the whitelist, pathname %#x: %v", other, v)
				}
				if v := verdict(st.Container, other); v.Action() != seccomp.RetAllow {
					t.Errorf("container stage, execve %#x: %v (the runtime and clawos-init exec under it)", other, v)
				}
			}
		})
	}
}
