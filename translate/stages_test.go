package translate_test

import (
	"reflect"
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
	for _, arch := range []translate.Arch{translate.ArchX8664, translate.ArchAArch64} {
		if _, err := translate.SingleStage(wl, translate.Options{Arch: arch}, "crun", false); err == nil {
			t.Errorf("%s: a runtime never measured was accepted", arch)
		}
		// runc's needs are measured on both (aarch64: in the VM matrix's guest).
		if _, err := translate.SingleStage(wl, translate.Options{Arch: arch}, "runc", false); err != nil {
			t.Errorf("%s: %v", arch, err)
		}
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
			evs := map[*translate.Profile]*seccomp.Evaluator{st.Agent: evaluatorOf(t, st.Agent), st.Container: evaluatorOf(t, st.Container)}
			verdict := func(p *translate.Profile, arg0 uint64) seccomp.Verdict {
				return evs[p].Evaluate(seccomp.Input{Arch: translate.ArchX8664.Audit(), Nr: int32(execve), Args: [6]uint64{arg0}})
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

// TestBaselineConditions checks that a baseline widens a small whitelist
// only as far as the measured programs need: clone without namespace
// flags, openat read-only, clone3 denied with ENOSYS (tokio: libc falls
// back to clone); and that no baseline allows a call the dangerous-syscall
// lint reports.
func TestBaselineConditions(t *testing.T) {
	v := validator(t)
	raw := []byte(`{"schema_version":"1.0.0","whitelist_id":"1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d","created_at":"2026-12-02T00:00:00Z","created_by":"Security Agent",
		"metadata":{"environment":"testing"},"syscalls":[{"name":"write","permission":"ALLOW"},{"name":"exit_group","permission":"ALLOW"}]}`)
	wl, rep := v.Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	arch := translate.ArchX8664
	nr := func(name string) int32 {
		n, _ := arch.SyscallNumber(name)
		return int32(n)
	}
	dangerous := map[string]bool{}
	for _, d := range translate.KnownDangerous() {
		dangerous[d] = true
	}
	for _, bl := range []string{"start", "tokio"} {
		t.Run(bl, func(t *testing.T) {
			p, err := translate.Translate(wl, translate.Options{Arch: arch, Baselines: []string{bl}})
			if err != nil {
				t.Fatal(err)
			}
			ev := evaluatorOf(t, p)
			for _, c := range []struct {
				name string
				call string
				args [6]uint64
				want seccomp.Verdict
			}{
				{"thread", "clone", [6]uint64{0x3d0f00}, seccomp.RetAllow},
				{"fork", "clone", [6]uint64{17}, seccomp.RetAllow},
				{"CLONE_NEWUSER", "clone", [6]uint64{0x10000000 | 17}, seccomp.RetKillProcess},
				{"CLONE_NEWNET", "clone", [6]uint64{0x40000000 | 17}, seccomp.RetKillProcess},
				{"CLONE_NEWNS", "clone", [6]uint64{0x20000 | 17}, seccomp.RetKillProcess},
				{"read-only open", "openat", [6]uint64{0, 0, 0x80000}, seccomp.RetAllow},
				{"write open", "openat", [6]uint64{0, 0, 1}, seccomp.RetKillProcess},
				{"O_RDONLY|O_CREAT", "openat", [6]uint64{0, 0, 0x40}, seccomp.RetKillProcess},
				{"O_RDONLY|O_TRUNC", "openat", [6]uint64{0, 0, 0x200}, seccomp.RetKillProcess},
			} {
				got := ev.Evaluate(seccomp.Input{Arch: arch.Audit(), Nr: nr(c.call), Args: c.args})
				if got.Action() != c.want {
					t.Errorf("%s %s: %v, want %v", c.call, c.name, got, c.want)
				}
			}
			if bl == "tokio" {
				if got := ev.Evaluate(seccomp.Input{Arch: arch.Audit(), Nr: nr("clone3")}); got.Action() != seccomp.RetErrno || got.Data() != 38 {
					t.Errorf("clone3 under the tokio baseline: %v, want ENOSYS", got)
				}
			}
			for _, o := range p.Origins {
				if strings.HasPrefix(o.Source, "baseline:") && dangerous[o.Syscall] && strings.HasPrefix(o.Verdict, "allow") {
					t.Errorf("baseline %s allows %s, which the dangerous-syscall lint reports: %s", bl, o.Syscall, o.Verdict)
				}
			}
		})
	}
}

// evaluatorOf compiles p's filter and returns its evaluator.
func evaluatorOf(t *testing.T, p *translate.Profile) *seccomp.Evaluator {
	t.Helper()
	prog, err := seccomp.Compile(p.Seccomp)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := seccomp.NewEvaluator(prog)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

// TestTwoStageMeasure: measurement mode's container stage logs every call
// (the runtime's needs are what it measures, so none are required), on
// every architecture, and the agent stage is the exact one.
func TestTwoStageMeasure(t *testing.T) {
	v := validator(t)
	for _, arch := range []translate.Arch{translate.ArchX8664, translate.ArchAArch64} {
		t.Run(string(arch), func(t *testing.T) {
			opts := translate.Options{Arch: arch, ExecStart: 0x2000_0000_1000}
			wl, rep := v.Validate(readFile(t, "../examples/ironclaw.whitelist.json"), opts)
			if err := rep.Err(); err != nil {
				t.Fatal(err)
			}
			st, err := translate.TwoStage(wl, opts, translate.RuntimeMeasure)
			if err != nil {
				t.Fatal(err)
			}
			c := st.Container.Seccomp
			if c.DefaultAction != "SCMP_ACT_LOG" || len(c.Syscalls) != 0 {
				t.Errorf("container stage: default %s with %d rules, want SCMP_ACT_LOG and none", c.DefaultAction, len(c.Syscalls))
			}
			if len(c.Architectures) != 1 || len(st.Agent.Seccomp.Architectures) != 1 || c.Architectures[0] != st.Agent.Seccomp.Architectures[0] {
				t.Errorf("architectures %v, agent's %v", c.Architectures, st.Agent.Seccomp.Architectures)
			}
			if !st.Agent.ExecStartOnly || st.Agent.Seccomp.DefaultAction != "SCMP_ACT_KILL_PROCESS" {
				t.Errorf("agent stage: start-only %v, default %s", st.Agent.ExecStartOnly, st.Agent.Seccomp.DefaultAction)
			}
		})
	}
}

// TestInitReaper checks clawos-run --init's plan on both architectures: the
// container stage allows pid 1's measured calls (fork, the signal wait,
// waitid, kill), the agent stage is the same as without --init.
func TestInitReaper(t *testing.T) {
	v := validator(t)
	wl, rep := v.Validate(readFile(t, "../examples/ironclaw.whitelist.json"), translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []translate.Arch{translate.ArchX8664, translate.ArchAArch64} {
		t.Run(string(arch), func(t *testing.T) {
			opts := translate.Options{Arch: arch, ExecStart: 0x5a5a_1234_5000, Baselines: []string{"start"}}
			plain, err := translate.TwoStage(wl, opts, "embedded")
			if err != nil {
				t.Fatal(err)
			}
			opts.InitReaper = true
			reaper, err := translate.TwoStage(wl, opts, "embedded")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(plain.Agent, reaper.Agent) {
				t.Error("--init changed the agent stage")
			}
			allowed := map[string]bool{}
			for _, o := range reaper.Container.Origins {
				allowed[o.Syscall] = strings.HasPrefix(o.Verdict, "allow")
			}
			for _, call := range []string{"clone", "rt_sigtimedwait", "waitid", "kill"} {
				if !allowed[call] {
					t.Errorf("the container stage of --init does not allow %s", call)
				}
			}
		})
	}
}

// TestTCPOnly: with TCPOnly (ports held by Landlock alone, in the host's
// network namespace) a port-restricted whitelist's socket rule is TCP only
// and MSG_FASTOPEN is refused on every send call, on both architectures;
// what cannot be narrowed is refused: io_uring (seccomp never sees its
// operations), a socket or sendto rule with an argument filter. Without
// ports, TCPOnly changes nothing.
func TestTCPOnly(t *testing.T) {
	v := validator(t)
	raw := readFile(t, "../examples/ironclaw.whitelist.json")
	wl, rep := v.Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	for _, arch := range []translate.Arch{translate.ArchX8664, translate.ArchAArch64} {
		p, err := translate.Translate(wl, translate.Options{Arch: arch, TCPOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		prog, err := seccomp.Compile(p.Seccomp)
		if err != nil {
			t.Fatal(err)
		}
		e, err := seccomp.NewEvaluator(prog)
		if err != nil {
			t.Fatal(err)
		}
		call := func(name string, args ...uint64) string {
			nr, _ := arch.SyscallNumber(name)
			var a [6]uint64
			copy(a[:], args)
			return e.Evaluate(seccomp.Input{Arch: arch.Audit(), Nr: int32(nr), Args: a}).String()
		}
		for _, c := range []struct {
			what string
			got  string
			want string
		}{
			{"TCP socket", call("socket", 2, 1|0x80000, 0), "ALLOW"},
			{"TCP socket, IPv6, IPPROTO_TCP", call("socket", 10, 1, 6), "ALLOW"},
			{"UDP socket", call("socket", 2, 2, 0), "ERRNO(1)"},
			{"MPTCP socket", call("socket", 2, 1, 262), "ERRNO(1)"},
			{"sendto", call("sendto", 3, 0, 1, 0x40), "ALLOW"},
			{"sendto MSG_FASTOPEN", call("sendto", 3, 0, 1, 0x20000000|0x40), "ERRNO(1)"},
		} {
			if c.got != c.want {
				t.Errorf("%s %s: %s, want %s", arch, c.what, c.got, c.want)
			}
		}
	}
	// Rules that cannot be narrowed.
	refuse := func(extra string) *translate.Whitelist {
		b := strings.Replace(string(raw), `"syscalls": [`, `"syscalls": [`+extra+`,`, 1)
		w, r := v.Validate([]byte(b), translate.Options{})
		if w == nil {
			t.Fatalf("%s: %v", extra, r.Err())
		}
		return w
	}
	for _, extra := range []string{
		`{"name": "io_uring_setup", "permission": "ALLOW", "category": "misc"}`,
		`{"name": "sendmsg", "permission": "CONDITIONAL", "category": "network", "conditions": {"description": "x", "argument_filter": {"arg_index": 2, "operator": "eq", "value": 0}}}`,
	} {
		if _, err := translate.Translate(refuse(extra), translate.Options{TCPOnly: true}); err == nil {
			t.Errorf("TCPOnly translated %s", extra)
		}
		if _, err := translate.Translate(refuse(extra), translate.Options{}); err != nil {
			t.Errorf("without TCPOnly %s: %v", extra, err)
		}
	}
}
