package learn

import (
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// NotifyAll is the learn mode's agent filter: every call of arch is
// reported to the supervisor (and then allowed).
func NotifyAll(arch translate.Arch) *specs.LinuxSeccomp {
	return &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, Architectures: []specs.Arch{arch.OCI()}, Flags: []specs.LinuxSeccompFlag{}}
}

// SyncCall is the call clawos-init --notify makes once, right after
// loading its filter and before it execs the agent: every notifying filter
// reports it, so that clawos-init waits there until the supervisor holds
// the listener (the listener is close-on-exec). The supervisor drops it:
// it is not the agent's.
const SyncCall = "getppid"

// Complaining is the complain mode's agent filter: s with every verdict
// other than allow (and log) turned into a user notification, so that what
// the whitelist would deny or kill is reported and allowed instead, and
// what it allows runs at full speed. SyncCall is always reported (the
// supervisor judges the agent's own by the real filter).
func Complaining(s *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	out := *s
	notify := func(a specs.LinuxSeccompAction) bool { return a != specs.ActAllow && a != specs.ActLog }
	if notify(out.DefaultAction) {
		out.DefaultAction, out.DefaultErrnoRet = specs.ActNotify, nil
	}
	out.Syscalls = nil
	for _, c := range s.Syscalls {
		if notify(c.Action) {
			c.Action, c.ErrnoRet = specs.ActNotify, nil
		}
		var names []string
		for _, n := range c.Names {
			if n != SyncCall {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		c.Names = names
		// A rule that now does what the default does is left to the
		// default (libseccomp refuses it).
		if c.Action != out.DefaultAction {
			out.Syscalls = append(out.Syscalls, c)
		}
	}
	return &out
}

// NotifyPortCalls makes the network calls of a complain filter always
// notify, allowed or not, so that the supervisor sees their destinations
// and reports those the port rules would refuse (the rules themselves
// only count packets in complain mode).
func NotifyPortCalls(s *specs.LinuxSeccomp, arch translate.Arch) *specs.LinuxSeccomp {
	out := *s
	out.Syscalls = nil
	var names []string
	for n := range portCalls {
		if _, ok := arch.SyscallNumber(n); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, c := range s.Syscalls {
		var keep []string
		for _, n := range c.Names {
			if !portCalls[n] {
				keep = append(keep, n)
			}
		}
		if len(keep) > 0 {
			c.Names = keep
			out.Syscalls = append(out.Syscalls, c)
		}
	}
	if out.DefaultAction != specs.ActNotify {
		out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: names, Action: specs.ActNotify})
	}
	return &out
}

// Violation is one kind of call the whitelist would not have allowed.
type Violation struct {
	Syscall  string      `json:"syscall"`
	Verdict  string      `json:"verdict"` // what the whitelist would have done
	Count    int         `json:"count"`
	Examples [][6]uint64 `json:"example_args"` // up to three distinct argument sets
	// Destinations are the socket addresses of a network call the port
	// rules would refuse (up to maxExamples).
	Destinations []string `json:"destinations,omitempty"`
}

// maxExamples bounds the examples kept per violation.
const maxExamples = 3

// Complaints collects the would-be violations of a complain run.
type Complaints struct {
	arch  translate.Arch
	eval  *seccomp.Evaluator
	byKey map[string]*Violation
	// Ports, when set, are the port rules whose would-be refusals are
	// reported with their destinations (calls made to notify by
	// NotifyPortCalls); Read reads the agent's memory for them.
	Ports *PortRules
	Read  MemReader
}

// PortRules are the ports a whitelist allows: destination ports of connect
// and the send calls, local ports of bind; nil leaves that side free.
type PortRules struct {
	Connect, Bind []int
}

// NewComplaints judges calls by the agent's real filter.
func NewComplaints(arch translate.Arch, agent *seccomp.Program) (*Complaints, error) {
	ev, err := seccomp.NewEvaluator(agent)
	if err != nil {
		return nil, err
	}
	return &Complaints{arch: arch, eval: ev, byKey: map[string]*Violation{}}, nil
}

// Add records a notified call with the verdict the whitelist gives it.
func (c *Complaints) Add(call seccomp.Call) {
	v := c.eval.Evaluate(seccomp.Input{Arch: call.Arch, Nr: call.Nr, IP: call.IP, Args: call.Args})
	name := c.arch.SyscallName(int(call.Nr))
	if name == "" || call.Arch != c.arch.Audit() {
		name = fmt.Sprintf("arch 0x%x nr %d", call.Arch, call.Nr)
	}
	if a := v.Action(); a == seccomp.RetAllow || a == seccomp.RetLog {
		c.portsOf(name, call)
		return
	}
	c.add(name, v.String(), call, "")
}

// portsOf reports the destinations of an allowed network call that the
// port rules would refuse.
func (c *Complaints) portsOf(name string, call seccomp.Call) {
	if c.Ports == nil || c.Read == nil || !portCalls[name] {
		return
	}
	allowed := c.Ports.Connect
	if name == "bind" {
		allowed = c.Ports.Bind
	}
	if allowed == nil {
		return
	}
	for _, d := range callAddrs(c.Read, call, name) {
		if (d.Family == "AF_INET" || d.Family == "AF_INET6") && !(name == "bind" && d.Port == 0) && !slices.Contains(allowed, d.Port) {
			c.add(name, "REJECT (port rules)", call, d.String())
		}
	}
}

// add counts one would-be violation, with an example and a destination.
func (c *Complaints) add(name, verdict string, call seccomp.Call, dest string) {
	key := name + "\x00" + verdict
	vi := c.byKey[key]
	if vi == nil {
		vi = &Violation{Syscall: name, Verdict: verdict}
		c.byKey[key] = vi
	}
	vi.Count++
	if dest != "" && len(vi.Destinations) < maxExamples && !slices.Contains(vi.Destinations, dest) {
		vi.Destinations = append(vi.Destinations, dest)
	}
	if len(vi.Examples) < maxExamples {
		for _, e := range vi.Examples {
			if e == call.Args {
				return
			}
		}
		vi.Examples = append(vi.Examples, call.Args)
	}
}

// Report lists the violations, most frequent first.
func (c *Complaints) Report() []Violation {
	out := make([]Violation, 0, len(c.byKey))
	for _, v := range c.byKey {
		out = append(out, *v)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Syscall < out[j].Syscall
	})
	return out
}

// Table prints violations as a table: syscall, count, would-be verdict and
// the first example's arguments.
func Table(w io.Writer, vs []Violation) {
	if len(vs) == 0 {
		fmt.Fprintln(w, "complain: no call outside the whitelist")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSCALL\tCOUNT\tWOULD BE\tEXAMPLE ARGS")
	for _, v := range vs {
		var args []string
		if len(v.Examples) > 0 {
			for _, a := range v.Examples[0] {
				args = append(args, fmt.Sprintf("%#x", a))
			}
		}
		example := strings.Join(args, ", ")
		if len(v.Destinations) > 0 {
			example = "to " + strings.Join(v.Destinations, ", ")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", v.Syscall, v.Count, v.Verdict, example)
	}
	tw.Flush()
}
