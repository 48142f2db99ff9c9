package translate

import (
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Internal baselines: what a runtime's init and clawos-init call under the
// container-level filter, measured by test/baseline/measure-runtime.sh.
const (
	baselineRuntimePrefix = "runtime-"
	baselineInit          = "clawos-init"
	baselineInitReaper    = "clawos-init-reaper"
)

// RuntimeMeasure is the runtime name of measurement mode (clawos-run
// --measure-runtime, test/baseline/measure-runtime.sh): the container stage
// logs every call and kills none, so that a runtime's needs can be
// measured where they have not been yet (a new architecture). Never a
// sandbox's runtime: nothing is confined but by the agent stage.
const RuntimeMeasure = "measure"

// Runtimes lists the OCI runtimes whose needs have been measured.
func Runtimes(arch Arch) []string {
	var out []string
	for _, r := range []string{"embedded", "runc"} {
		if _, err := Baseline(arch, baselineRuntimePrefix+r); err == nil {
			out = append(out, r)
		}
	}
	return out
}

// Stages are the two filters of a sandbox. The OCI runtime loads Container
// (linux.seccomp) while it starts the container; clawos-init then loads
// Agent and execs the agent. The kernel applies the most restrictive verdict
// of stacked filters, and every call Agent allows, Container allows
// unconditionally or under the same condition, so the agent runs under
// exactly Agent: the whitelist, the chosen baselines, and the execve that
// starts it.
type Stages struct {
	Container *Profile
	Agent     *Profile
}

// TwoStage translates wl into both stages for runtime (see Runtimes).
func TwoStage(wl *Whitelist, opts Options, runtime string) (*Stages, error) {
	arch := opts.TargetArch()
	agent, err := Translate(wl, opts)
	if err != nil {
		return nil, err
	}
	if err := allowExecve(agent, opts.ExecStart); err != nil {
		return nil, err
	}
	if runtime == RuntimeMeasure {
		container := &Profile{Arch: agent.Arch, Network: agent.Network, Skipped: agent.Skipped,
			Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActLog, Architectures: agent.Seccomp.Architectures,
				Flags: []specs.LinuxSeccompFlag{}}}
		return &Stages{Container: container, Agent: agent}, nil
	}
	rt, err := Baseline(arch, baselineRuntimePrefix+runtime)
	if err != nil {
		return nil, fmt.Errorf("runtime %s: %w", runtime, err)
	}
	ini, err := Baseline(arch, baselineInit)
	if err != nil {
		return nil, fmt.Errorf("clawos-init: %w", err)
	}
	if opts.InitReaper {
		reaper, err := Baseline(arch, baselineInitReaper)
		if err != nil {
			return nil, fmt.Errorf("clawos-init --init: %w", err)
		}
		ini = append(ini, reaper...)
	}
	return &Stages{Container: widen(agent, false, runtime, rt, ini), Agent: agent}, nil
}

// SingleStage translates wl into one filter for runtime that a container
// engine can load as it stands, without clawos-init: the whitelist and its
// baselines, plus what the runtime's init calls after loading the filter
// (without them the container could not start) and, unless noNewPrivs
// (the container runs with no_new_privs), what the init calls while it
// drops privileges under the filter (setuid, setgroups, capset, ...).
// That is the Kubernetes Localhost seccomp profile's path (clawos-policy
// translate --format kubelet); it is wider than the whitelist by exactly
// those calls, which the profile's origins name.
func SingleStage(wl *Whitelist, opts Options, runtime string, noNewPrivs bool) (*Profile, error) {
	agent, err := Translate(wl, opts)
	if err != nil {
		return nil, err
	}
	rt, err := Baseline(opts.TargetArch(), baselineRuntimePrefix+runtime)
	if err != nil {
		return nil, fmt.Errorf("runtime %s: %w", runtime, err)
	}
	if !noNewPrivs {
		privs, err := Baseline(opts.TargetArch(), baselineRuntimePrefix+runtime+"-privs")
		if err != nil {
			return nil, fmt.Errorf("runtime %s without no_new_privs: %w", runtime, err)
		}
		rt = append(rt, privs...)
	}
	return widen(agent, true, runtime, rt, nil), nil
}

// widen is agent with the calls of the runtime's baseline rt and of
// clawos-init's ini (nil for a single stage) allowed unconditionally, each
// origin saying where it comes from and, with single, that no second stage
// restores the whitelist's verdict. Widened lists the calls it allows that
// the agent did not allow unconditionally.
func widen(agent *Profile, single bool, runtime string, rt, ini []BaselineCall) *Profile {
	replaced, added := "the agent stage still applies: ", "allow (container stage only; the agent stage kills it)"
	if single {
		replaced, added = "single stage: replaces the whitelist's ", "allow (single stage: not in the whitelist, needed by the runtime)"
	}
	arch := agent.Arch
	container := &Profile{Arch: agent.Arch, Network: agent.Network, Skipped: agent.Skipped}
	force := map[string]string{}
	for _, c := range rt {
		force[c.Name] = "runtime:" + runtime + " (measured in " + strings.Join(c.MeasuredIn, "; ") + ")"
	}
	for _, c := range ini {
		if _, ok := force[c.Name]; !ok {
			force[c.Name] = "clawos-init (measured in " + strings.Join(c.MeasuredIn, "; ") + ")"
		}
	}
	container.Seccomp = forceAllow(agent.Seccomp, sortedKeys(force))
	for _, o := range agent.Origins {
		if src, ok := force[o.Syscall]; ok {
			if o.Verdict != "allow" {
				container.Widened = append(container.Widened, o.Syscall)
			}
			o.Verdict, o.Source, o.Reason = "allow (container stage)", src, replaced+o.Verdict
			delete(force, o.Syscall)
		}
		container.Origins = append(container.Origins, o)
	}
	for _, name := range sortedKeys(force) {
		nr, _ := arch.SyscallNumber(name)
		container.Origins = append(container.Origins, Origin{Syscall: name, Number: nr, Verdict: added, Source: force[name]})
		container.Widened = append(container.Widened, name)
	}
	sort.Slice(container.Origins, func(i, j int) bool { return container.Origins[i].Syscall < container.Origins[j].Syscall })
	sort.Strings(container.Widened)
	return container
}

// allowExecve adds the execve that starts the agent. A whitelist that
// allows execve (unconditionally, or under its own condition, which
// clawos-init's execve must then meet) keeps its rule. Otherwise, with
// start (the secret address of clawos-init's pathname, Options.ExecStart),
// execve is allowed only with that pathname pointer and kills otherwise,
// whatever the whitelist said (a DENY would let an agent guess the address
// without dying); without start, execve is allowed, and a whitelist that
// denies it cannot be started.
func allowExecve(p *Profile, start uint64) error {
	nr, _ := p.Arch.SyscallNumber("execve")
	listed := -1
	for i, o := range p.Origins {
		if o.Syscall == "execve" {
			listed = i
		}
	}
	// A baseline's execve is the start's own (measured programs are
	// started by one): with start, clawos-init's execve replaces it.
	fromBaseline := listed >= 0 && strings.HasPrefix(p.Origins[listed].Source, "baseline:")
	if listed >= 0 && strings.HasPrefix(p.Origins[listed].Verdict, "allow") && !(fromBaseline && start != 0) {
		return nil
	}
	if start != 0 {
		p.Seccomp = forceAllow(p.Seccomp, nil, "execve")
		p.Seccomp.Syscalls = append(p.Seccomp.Syscalls, specs.LinuxSyscall{Names: []string{"execve"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: start, Op: specs.OpEqualTo}}})
		p.ExecStartOnly = true
		o := Origin{Syscall: "execve", Number: nr, Verdict: "allow only clawos-init's execve of the agent (its pathname at a secret address), kill every other",
			Source: "clawos-init", Reason: "the whitelist does not allow execve: no program but the agent may start"}
		switch {
		case fromBaseline:
			o.Reason = "the whitelist does not allow execve (the " + p.Origins[listed].Source + " execve is the start's, clawos-init's): no program but the agent may start"
			p.Origins[listed] = o
		case listed >= 0:
			o.Reason = "the whitelist " + p.Origins[listed].Verdict + " execve: no program but the agent may start, and a guess of the address kills"
			p.Origins[listed] = o
		default:
			p.Origins = append(p.Origins, o)
		}
		sort.Slice(p.Origins, func(i, j int) bool { return p.Origins[i].Syscall < p.Origins[j].Syscall })
		return nil
	}
	if listed >= 0 {
		o := p.Origins[listed]
		return &clawerr.Error{Code: clawerr.EPerm, Path: o.Source,
			Message: "the whitelist denies execve, so the agent cannot be started",
			Hint:    "allow execve: clawos-init needs it once to start the agent (with Landlock, only the agent's own binary can be executed)"}
	}
	p.Seccomp = forceAllow(p.Seccomp, []string{"execve"})
	p.Origins = append(p.Origins, Origin{Syscall: "execve", Number: nr, Verdict: "allow", Source: "clawos-init",
		Reason: "the execve that starts the agent; where the kernel has Landlock, only the agent's binary and its interpreter can be executed"})
	sort.Slice(p.Origins, func(i, j int) bool { return p.Origins[i].Syscall < p.Origins[j].Syscall })
	return nil
}

// forceAllow returns a copy of s where names are allowed unconditionally:
// every other rule for them is removed, and they join the unconditional
// ALLOW entry. The rules of remove are removed without a replacement.
func forceAllow(s *specs.LinuxSeccomp, names []string, remove ...string) *specs.LinuxSeccomp {
	drop := map[string]bool{}
	for _, n := range append(append([]string{}, names...), remove...) {
		drop[n] = true
	}
	out := *s
	out.Syscalls = nil
	var allow []string
	for _, c := range s.Syscalls {
		var keep []string
		for _, n := range c.Names {
			if !drop[n] {
				keep = append(keep, n)
			}
		}
		if c.Action == specs.ActAllow && len(c.Args) == 0 {
			allow = append(allow, keep...)
			continue
		}
		if len(keep) > 0 {
			c.Names = keep
			out.Syscalls = append(out.Syscalls, c)
		}
	}
	allow = append(allow, names...)
	sort.Strings(allow)
	if len(allow) > 0 {
		out.Syscalls = append([]specs.LinuxSyscall{{Names: allow, Action: specs.ActAllow}}, out.Syscalls...)
	}
	return &out
}
