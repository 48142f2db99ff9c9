package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
)

// operator maps a P1.2 operator to the OCI operator that allows the call and
// the one that selects the other values (the EPERM branch). masked_eq has no
// complement in libseccomp; its EPERM branch is a condition that always holds
// (arg >= 0), placed after the ALLOW rule (see docs/translation.md).
type operator struct{ allow, complement specs.LinuxSeccompOperator }

var operators = map[string]operator{
	"eq":        {specs.OpEqualTo, specs.OpNotEqual},
	"ne":        {specs.OpNotEqual, specs.OpEqualTo},
	"gt":        {specs.OpGreaterThan, specs.OpLessEqual},
	"ge":        {specs.OpGreaterEqual, specs.OpLessThan},
	"lt":        {specs.OpLessThan, specs.OpGreaterEqual},
	"le":        {specs.OpLessEqual, specs.OpGreaterThan},
	"masked_eq": {specs.OpMaskedEqual, ""},
}

// KnownOperators lists the P1.2 operators, sorted.
func KnownOperators() []string { return sortedKeys(operators) }

// Socket families, types and protocols a port restriction on socket
// allows: TCP and UDP, the protocols the port policy passes by port. The
// type is compared under SOCK_TYPE_MASK (0xf) so that SOCK_NONBLOCK and
// SOCK_CLOEXEC stay free; the protocol is 0 (the type's default) or the
// type's own protocol, so that UDP-Lite (136), ICMP and ICMPv6 ping sockets
// (1, 58), SCTP (132), MPTCP (262), SMC (256) and L2TP (115) on an
// AF_INET/AF_INET6 socket of an allowed type are refused.
var (
	portFamilies = []uint64{2, 10} // AF_INET, AF_INET6
	portTypes    = []struct {
		typ   uint64
		proto []uint64
	}{
		{1, []uint64{0, 6}},  // SOCK_STREAM: 0, IPPROTO_TCP
		{2, []uint64{0, 17}}, // SOCK_DGRAM: 0, IPPROTO_UDP
	}
)

const sockTypeMask = 0xf

// DefaultDenyErrno is the errno of a DENY: P1.7 code 4, EPERM.
const DefaultDenyErrno = 1

// NetworkPolicy carries port restrictions out of seccomp, which cannot read
// a sockaddr; the launcher enforces it in the agent's network namespace.
type NetworkPolicy struct {
	// ConnectPorts are the destination ports of connect, sendto, sendmsg and
	// sendmmsg (and of the sockets a port-restricted socket rule allows).
	ConnectPorts []int `json:"connect_ports,omitempty"`
	// BindPorts are the local ports bind may use.
	BindPorts []int `json:"bind_ports,omitempty"`
	// Sources are the JSON paths of the rules the ports come from.
	Sources []string `json:"sources,omitempty"`
}

// Restricted reports whether any port restriction applies.
func (n NetworkPolicy) Restricted() bool { return len(n.Sources) > 0 }

// Origin records where the rule for one syscall came from.
type Origin struct {
	Syscall string `json:"syscall"`
	Number  int    `json:"number"`
	// Verdict in words, for example "allow" or "allow if arg2 & 0x3 == 0x0, else EPERM".
	Verdict string `json:"verdict"`
	// Source is "syscalls[N]" or "baseline:start" / "baseline:tokio".
	Source string `json:"source"`
	Reason string `json:"reason,omitempty"`
}

// Profile is a translated whitelist.
type Profile struct {
	Arch    Arch                `json:"arch"`
	Seccomp *specs.LinuxSeccomp `json:"seccomp"`
	Network NetworkPolicy       `json:"network"`
	Origins []Origin            `json:"origins"`
	// Skipped are rules that have no effect on Arch, with the reason.
	Skipped []Origin `json:"skipped,omitempty"`
	// ExecStartOnly: the agent stage allows only the execve that starts
	// the agent (Options.ExecStart), so no program but the agent can start.
	ExecStartOnly bool `json:"exec_start_only,omitempty"`
	// Widened are, in a container stage or a single stage, the calls it
	// allows unconditionally that the whitelist (with its baselines) did
	// not: what the runtime's or clawos-init's needs added.
	Widened []string `json:"-"`
}

// Translate turns a validated whitelist into a profile for opts.Arch. It
// re-checks what it relies on and refuses, rather than drops, a rule it
// cannot express.
func Translate(wl *Whitelist, opts Options) (*Profile, error) {
	arch := opts.TargetArch()
	if _, ok := arches[arch]; !ok {
		return nil, clawerr.New(clawerr.EProto, fmt.Sprintf("unsupported architecture %q", arch))
	}
	t := &translator{arch: arch, p: &Profile{Arch: arch}, listed: map[string]bool{}, tcpOnly: opts.TCPOnly}
	for i, rule := range wl.Syscalls {
		if err := t.rule(i, rule); err != nil {
			return nil, err
		}
	}
	if err := t.onlyTCP(wl); err != nil {
		return nil, err
	}
	for _, name := range opts.Baselines {
		if err := t.baseline(name); err != nil {
			return nil, err
		}
	}
	t.finish()
	return t.p, nil
}

type translator struct {
	arch   Arch
	p      *Profile
	listed map[string]bool

	allow       []string                // unconditional ALLOW
	deny        map[uint][]string       // errno -> names
	conditional []specs.LinuxSyscall    // ALLOW with args, and their EPERM branches
	ports       map[string]map[int]bool // "connect"/"bind" -> ports
	// tcpOnly (Options.TCPOnly); socketRuled: socketRule made socket's
	// rules.
	tcpOnly, socketRuled bool
}

// msgFastOpen is MSG_FASTOPEN: a sendto, sendmsg or sendmmsg with it on an
// unconnected TCP socket opens the connection itself (TCP Fast Open),
// which Landlock's connect right does not see (landlock-lsm/linux#41).
const msgFastOpen = 0x20000000

// sendFlagsArg is the flags argument of the calls that can open a TCP
// connection without connect.
var sendFlagsArg = map[string]uint{"sendto": 3, "sendmsg": 2, "sendmmsg": 3}

// onlyTCP narrows the agent stage where ports are restricted and
// Options.TCPOnly asks for it (Landlock alone holds the ports): the socket
// rule becomes TCP-only (a socket allowed outright gets the port-restricted
// rule of TCP), the send calls refuse MSG_FASTOPEN (EPERM), and io_uring,
// whose operations seccomp never sees, is refused outright. A rule with an
// argument filter on one of these calls cannot be narrowed: refused.
func (t *translator) onlyTCP(wl *Whitelist) error {
	if !t.tcpOnly || t.ports == nil {
		return nil
	}
	refuse := func(i int, msg string) error {
		return &clawerr.Error{Code: clawerr.EPerm, Path: rulePath(i), Message: msg,
			Hint: "allow it outright or with a port_restriction, or give the sandbox a network namespace of its own"}
	}
	setVerdict := func(name, v string) {
		for k := range t.p.Origins {
			if t.p.Origins[k].Syscall == name {
				t.p.Origins[k].Verdict = v
			}
		}
	}
	allowed := func(name string) bool { return slices.Contains(t.allow, name) }
	for i, r := range wl.Syscalls {
		switch {
		case r.Permission == Deny:
		case strings.HasPrefix(r.Name, "io_uring_"):
			return refuse(i, r.Name+" is allowed: io_uring's operations bypass seccomp, and in the host's network namespace the port rules hold only by Landlock and seccomp together")
		case r.Name == "socket" && !t.socketRuled:
			if !allowed("socket") {
				return refuse(i, "socket has an argument filter, which cannot be limited to TCP: in the host's network namespace only TCP's ports are enforced (Landlock)")
			}
			t.allow = slices.DeleteFunc(t.allow, func(n string) bool { return n == "socket" })
			setVerdict("socket", t.socketRule("socket", nil, []string{"TCP only: ports are enforced for TCP alone here (Landlock)"}))
		case sendFlagsArg[r.Name] != 0:
			if !allowed(r.Name) {
				return refuse(i, r.Name+" has an argument filter, which cannot be combined with the refusal of MSG_FASTOPEN that the host's network namespace needs")
			}
			idx := sendFlagsArg[r.Name]
			t.allow = slices.DeleteFunc(t.allow, func(n string) bool { return n == r.Name })
			t.conditional = append(t.conditional,
				specs.LinuxSyscall{Names: []string{r.Name}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: idx, Value: msgFastOpen, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
				specs.LinuxSyscall{Names: []string{r.Name}, Action: specs.ActErrno, ErrnoRet: uintPtr(DefaultDenyErrno),
					Args: []specs.LinuxSeccompArg{{Index: idx, Value: msgFastOpen, ValueTwo: msgFastOpen, Op: specs.OpMaskedEqual}}})
			setVerdict(r.Name, fmt.Sprintf("allow if arg%d & MSG_FASTOPEN == 0 (TCP Fast Open would open a connection that Landlock does not see), else EPERM", idx))
		}
	}
	return nil
}

func (t *translator) rule(i int, rule Rule) error {
	src := rulePath(i)
	nr, ok := t.arch.SyscallNumber(rule.Name)
	if !ok {
		// Validation warned (name of another arch) or refused (unknown).
		t.p.Skipped = append(t.p.Skipped, Origin{Syscall: rule.Name, Number: -1, Verdict: "none", Source: src,
			Reason: fmt.Sprintf("not a syscall on %s", t.arch)})
		return nil
	}
	if t.listed[rule.Name] {
		return &clawerr.Error{Code: clawerr.EProto, Path: rulePath(i, "name"), Message: fmt.Sprintf("syscall %q is listed twice", rule.Name)}
	}
	t.listed[rule.Name] = true
	o := Origin{Syscall: rule.Name, Number: nr, Source: src, Reason: rule.Notes}
	switch rule.Permission {
	case Allow:
		t.allow = append(t.allow, rule.Name)
		o.Verdict = "allow"
	case Deny:
		errno := uint(DefaultDenyErrno)
		name := "EPERM"
		if rule.DenyErrno != "" {
			e, ok := denyErrno(rule.DenyErrno)
			if !ok {
				return &clawerr.Error{Code: clawerr.EProto, Path: rulePath(i, "x-clawos-deny-errno"), Message: fmt.Sprintf("%q is not a P1.7 code with an errno", rule.DenyErrno)}
			}
			errno, name = uint(e), rule.DenyErrno
		}
		if t.deny == nil {
			t.deny = map[uint][]string{}
		}
		t.deny[errno] = append(t.deny[errno], rule.Name)
		o.Verdict = "deny " + name
	case Conditional:
		v, err := t.conditionalRule(i, rule)
		if err != nil {
			return err
		}
		o.Verdict = v
	default:
		return &clawerr.Error{Code: clawerr.EProto, Path: rulePath(i, "permission"), Message: fmt.Sprintf("unknown permission %q", rule.Permission)}
	}
	t.p.Origins = append(t.p.Origins, o)
	return nil
}

func (t *translator) conditionalRule(i int, rule Rule) (string, error) {
	c := rule.Conditions
	if c == nil || (c.ArgumentFilter == nil && c.PortRestriction == nil) {
		return "", &clawerr.Error{Code: clawerr.EProto, Path: rulePath(i, "conditions"), Message: "CONDITIONAL rule without an argument_filter or port_restriction"}
	}
	var args []specs.LinuxSeccompArg
	var words []string
	var errnoBranch []specs.LinuxSeccompArg
	if af := c.ArgumentFilter; af != nil {
		a, complement, w, err := filterArgs(i, af)
		if err != nil {
			return "", err
		}
		if af.Operator == "masked_eq" {
			if open := openLetsThrough(rule.Name, af.ArgIndex, a.Value, a.ValueTwo); open != "" {
				w += " (also lets " + open + " through: not read-only)"
			}
		}
		args, errnoBranch, words = append(args, a), complement, append(words, w)
	}
	if pr := c.PortRestriction; pr != nil {
		if _, ok := portSyscalls[rule.Name]; !ok {
			return "", &clawerr.Error{Code: clawerr.EProto, Path: rulePath(i, "conditions", "port_restriction"), Message: "ports mean nothing to " + rule.Name}
		}
		kind := "connect"
		if rule.Name == "bind" {
			kind = "bind"
		}
		if t.ports == nil {
			t.ports = map[string]map[int]bool{}
		}
		if t.ports[kind] == nil {
			t.ports[kind] = map[int]bool{}
		}
		for _, p := range pr.AllowedPorts {
			t.ports[kind][p] = true
		}
		t.p.Network.Sources = append(t.p.Network.Sources, rulePath(i, "conditions", "port_restriction"))
		words = append(words, fmt.Sprintf("%s ports %s only (network policy)", kind, joinInts(pr.AllowedPorts)))
		if rule.Name == "socket" {
			return t.socketRule(rule.Name, args, words), nil
		}
	}
	if len(args) == 0 {
		t.allow = append(t.allow, rule.Name)
		return "allow, " + strings.Join(words, "; "), nil
	}
	t.conditional = append(t.conditional,
		specs.LinuxSyscall{Names: []string{rule.Name}, Action: specs.ActAllow, Args: args},
		specs.LinuxSyscall{Names: []string{rule.Name}, Action: specs.ActErrno, ErrnoRet: uintPtr(DefaultDenyErrno), Args: errnoBranch})
	return "allow if " + strings.Join(words, "; ") + ", else EPERM", nil
}

// socketRule allows socket for the families and types that have ports, each
// combination one ALLOW rule (rules are ORed; conditions within one are
// ANDed), and EPERM for every other socket.
func (t *translator) socketRule(name string, extra []specs.LinuxSeccompArg, words []string) string {
	t.socketRuled = true
	types, what := portTypes, "SOCK_STREAM/TCP or SOCK_DGRAM/UDP"
	if t.tcpOnly {
		types, what = portTypes[:1], "SOCK_STREAM/TCP"
	}
	for _, fam := range portFamilies {
		for _, pt := range types {
			for _, proto := range pt.proto {
				args := []specs.LinuxSeccompArg{
					{Index: 0, Value: fam, Op: specs.OpEqualTo},
					{Index: 1, Value: sockTypeMask, ValueTwo: pt.typ, Op: specs.OpMaskedEqual},
					{Index: 2, Value: proto, Op: specs.OpEqualTo},
				}
				args = append(args, extra...)
				t.conditional = append(t.conditional, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActAllow, Args: args})
			}
		}
	}
	t.conditional = append(t.conditional, specs.LinuxSyscall{Names: []string{name}, Action: specs.ActErrno,
		ErrnoRet: uintPtr(DefaultDenyErrno), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0, Op: specs.OpGreaterEqual}}})
	return "allow if family is AF_INET or AF_INET6 and type/protocol is " + what + " (protocol 0 or named); " + strings.Join(words, "; ") + ", else EPERM"
}

// filterArgs returns the OCI condition of an argument filter, the condition
// of its EPERM branch, and the condition in words. OCI masked_eq puts the
// mask in Value and the expected value in ValueTwo.
func filterArgs(i int, af *ArgumentFilter) (specs.LinuxSeccompArg, []specs.LinuxSeccompArg, string, error) {
	base := rulePath(i, "conditions", "argument_filter")
	op, ok := operators[af.Operator]
	if !ok {
		return specs.LinuxSeccompArg{}, nil, "", &clawerr.Error{Code: clawerr.EProto, Path: base + ".operator", Message: fmt.Sprintf("unknown operator %q", af.Operator)}
	}
	if af.ArgIndex < 0 || af.ArgIndex > 5 {
		return specs.LinuxSeccompArg{}, nil, "", &clawerr.Error{Code: clawerr.EProto, Path: base + ".arg_index", Message: "arg_index must be 0 to 5"}
	}
	v, err := af.Value.Uint64()
	if err != nil {
		return specs.LinuxSeccompArg{}, nil, "", &clawerr.Error{Code: clawerr.EProto, Path: base + ".value", Message: "bad value", Err: err}
	}
	idx := uint(af.ArgIndex)
	if af.Operator == "masked_eq" {
		if af.Mask == nil {
			return specs.LinuxSeccompArg{}, nil, "", &clawerr.Error{Code: clawerr.EProto, Path: base + ".mask", Message: "masked_eq needs a mask"}
		}
		m, err := af.Mask.Uint64()
		if err != nil {
			return specs.LinuxSeccompArg{}, nil, "", &clawerr.Error{Code: clawerr.EProto, Path: base + ".mask", Message: "bad mask", Err: err}
		}
		return specs.LinuxSeccompArg{Index: idx, Value: m, ValueTwo: v, Op: op.allow},
			[]specs.LinuxSeccompArg{{Index: idx, Value: 0, Op: specs.OpGreaterEqual}},
			fmt.Sprintf("arg%d & %#x == %#x", idx, m, v), nil
	}
	return specs.LinuxSeccompArg{Index: idx, Value: v, Op: op.allow},
		[]specs.LinuxSeccompArg{{Index: idx, Value: v, Op: op.complement}},
		fmt.Sprintf("arg%d %s %#x", idx, opSymbol[af.Operator], v), nil
}

var opSymbol = map[string]string{"eq": "==", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}

// cloneNamespaceFlags are clone's flags that create namespaces (CLONE_NEWNS,
// NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET; CLONE_NEWTIME shares
// clone's exit-signal bits and exists for clone3 and unshare only).
const cloneNamespaceFlags = 0x7e020000

// baselineConditions are the narrowest conditions under which a baseline
// adds a call whose arguments would otherwise widen a small whitelist: the
// measured programs create threads and processes but never namespaces, and
// open libraries and /proc and /sys files to read only. A call that does
// not meet the condition gets the whitelist's default (a kill).
var baselineConditions = map[string]struct {
	arg   specs.LinuxSeccompArg
	words string
}{
	"clone":  {specs.LinuxSeccompArg{Index: 0, Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual}, "no namespace flags (arg0 & 0x7e020000 == 0)"},
	"openat": {specs.LinuxSeccompArg{Index: 2, Value: ReadOnlyOpenMask, ValueTwo: 0, Op: specs.OpMaskedEqual}, "read-only (arg2 & 0x400243 == 0: no write access mode, O_CREAT, O_TRUNC or O_TMPFILE)"},
}

func (t *translator) baseline(name string) error {
	calls, err := Baseline(t.arch, name)
	if err != nil {
		return fmt.Errorf("baseline %s: %w", name, err)
	}
	src := "baseline:" + name
	add := func(call string, measured []string) error {
		if t.listed[call] {
			return nil // the whitelist's own rule stands
		}
		nr, ok := t.arch.SyscallNumber(call)
		if !ok {
			return clawerr.New(clawerr.EInternal, fmt.Sprintf("baseline %s names %q, which is not a syscall on %s", name, call, t.arch))
		}
		t.listed[call] = true
		o := Origin{Syscall: call, Number: nr, Verdict: "allow", Source: src, Reason: "measured in " + strings.Join(measured, "; ")}
		switch cond, ok := baselineConditions[call]; {
		case call == "clone3":
			// Its flags are in a struct seccomp cannot read: DENY with
			// ENOSYS, as the dangerous-syscall lint asks of a whitelist;
			// libc then falls back to clone, added with its condition.
			if t.deny == nil {
				t.deny = map[uint][]string{}
			}
			t.deny[38] = append(t.deny[38], call)
			o.Verdict = "deny ENOSYS (libc falls back to clone, whose flags can be filtered)"
		case ok:
			t.conditional = append(t.conditional, specs.LinuxSyscall{Names: []string{call}, Action: specs.ActAllow,
				Args: []specs.LinuxSeccompArg{cond.arg}})
			o.Verdict = "allow if " + cond.words + ", else the default"
		default:
			t.allow = append(t.allow, call)
		}
		t.p.Origins = append(t.p.Origins, o)
		return nil
	}
	for _, c := range calls {
		if err := add(c.Name, c.MeasuredIn); err != nil {
			return err
		}
		if c.Name == "clone3" {
			if err := add("clone", []string{"the fallback of clone3, which the baseline denies with ENOSYS"}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (t *translator) finish() {
	var calls []specs.LinuxSyscall
	if len(t.allow) > 0 {
		sort.Strings(t.allow)
		calls = append(calls, specs.LinuxSyscall{Names: t.allow, Action: specs.ActAllow})
	}
	calls = append(calls, t.conditional...)
	errnos := make([]uint, 0, len(t.deny))
	for e := range t.deny {
		errnos = append(errnos, e)
	}
	sort.Slice(errnos, func(i, j int) bool { return errnos[i] < errnos[j] })
	for _, e := range errnos {
		names := t.deny[e]
		sort.Strings(names)
		calls = append(calls, specs.LinuxSyscall{Names: names, Action: specs.ActErrno, ErrnoRet: uintPtr(e)})
	}
	t.p.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActKillProcess,
		Architectures: []specs.Arch{t.arch.OCI()},
		Flags:         []specs.LinuxSeccompFlag{},
		Syscalls:      calls,
	}
	t.p.Network.ConnectPorts = sortedPorts(t.ports["connect"])
	t.p.Network.BindPorts = sortedPorts(t.ports["bind"])
	sort.Slice(t.p.Origins, func(i, j int) bool { return t.p.Origins[i].Syscall < t.p.Origins[j].Syscall })
}

// SeccompJSON writes the OCI linux.seccomp section. It always writes
// "flags": [] — runc adds SECCOMP_FILTER_FLAG_SPEC_ALLOW (which turns off the
// speculative store bypass mitigation) when flags is absent, and the
// runtime-spec type drops an empty list.
func (p *Profile) SeccompJSON() ([]byte, error) {
	return MarshalSeccomp(p.Seccomp)
}

// seccompWire is the OCI section with flags always present.
type seccompWire struct {
	specs.LinuxSeccomp
	Flags []specs.LinuxSeccompFlag `json:"flags"`
}

// MarshalSeccomp writes an OCI seccomp section, indented, with "flags"
// always present.
func MarshalSeccomp(s *specs.LinuxSeccomp) ([]byte, error) {
	flags := s.Flags
	if flags == nil {
		flags = []specs.LinuxSeccompFlag{}
	}
	b, err := json.MarshalIndent(seccompWire{*s, flags}, "", "  ")
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "encode seccomp section")
	}
	return append(b, '\n'), nil
}

// MarshalSpec writes a whole OCI config, indented, with linux.seccomp.flags
// always present (see SeccompJSON).
func MarshalSpec(spec *specs.Spec) ([]byte, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "encode OCI config")
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		var doc map[string]json.RawMessage
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "encode OCI config")
		}
		var linux map[string]json.RawMessage
		if err := json.Unmarshal(doc["linux"], &linux); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "encode OCI config")
		}
		sec, err := MarshalSeccomp(spec.Linux.Seccomp)
		if err != nil {
			return nil, err
		}
		linux["seccomp"] = sec
		if doc["linux"], err = json.Marshal(linux); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "encode OCI config")
		}
		if b, err = json.Marshal(doc); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "encode OCI config")
		}
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "encode OCI config")
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func uintPtr(v uint) *uint { return &v }

func sortedPorts(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Ints(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
