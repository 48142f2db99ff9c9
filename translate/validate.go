package translate

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Options of validation and translation.
type Options struct {
	// Arch is the target architecture; "" means the native one.
	Arch Arch
	// RequireSignature refuses an unsigned whitelist even outside
	// production.
	RequireSignature bool
	// Baselines lists baselines to add when translating (see Baseline).
	Baselines []string
	// ExecStart, when non-zero, is the address at which clawos-init places
	// the pathname of the execve that starts the agent (clawos-init
	// --exec-at). Where the whitelist does not allow execve, the agent
	// stage then allows exactly that execve (its pathname pointer equals
	// ExecStart) and kills every other: no program but the agent can start
	// after the agent's first instruction, not through the dynamic loader
	// nor a memfd. Choose it at random per sandbox and keep it secret.
	ExecStart uint64
	// InitReaper: clawos-init stays as the sandbox's pid 1, the agent's
	// parent, to reap and forward signals (clawos-run --init). The
	// container stage adds its measured calls (internal baseline
	// clawos-init-reaper); the agent stage is unchanged.
	InitReaper bool
	// TCPOnly: the agent's sockets are limited to TCP over IPv4 and IPv6
	// wherever the whitelist restricts ports, because only TCP's ports are
	// enforced (Landlock's network rules, in the host's network namespace:
	// clawos-run --net host). A socket rule allowed outright or restricted
	// by ports becomes TCP-only; one with an argument filter is refused.
	TCPOnly bool
}

// TargetArch is the architecture translated and validated for: Arch, or
// this machine's when it is empty.
func (o Options) TargetArch() Arch {
	if o.Arch == "" {
		return NativeArch()
	}
	return o.Arch
}

// SchemaChecker checks a whitelist document against the P1.2 JSON Schema
// (SchemaJSON), with a diagnostic per failure at its JSON path, and an
// error when the document is not JSON. Package translate/schema implements
// it: this package links no JSON Schema library, so that a program that
// only translates validated whitelists does not initialise one.
type SchemaChecker interface {
	Check(raw []byte) ([]Diagnostic, error)
}

// Validator validates whitelists against the P1.2 schema and the semantic
// checks. It is safe for concurrent use.
type Validator struct{ schema SchemaChecker }

// NewValidator validates with schema (schema.NewValidator gives one with
// the compiled P1.2 schema).
func NewValidator(schema SchemaChecker) *Validator { return &Validator{schema: schema} }

// input is what every check sees.
type input struct {
	raw  []byte
	wl   *Whitelist
	opts Options
	arch Arch
}

// check is one semantic check. Checks never stop each other: all run, and
// each appends what it finds.
type check struct {
	name string
	run  func(in *input, r *Report)
}

// checks are the semantic checks and lints, in the order they run.
var checks = []check{
	{"schema-version", checkSchemaVersion},
	{"duplicate-name", checkDuplicates},
	{"syscall-name", checkNames},
	{"conditions", checkConditions},
	{"argument-filter", checkArgumentFilter},
	{"port-restriction", checkPortRestriction},
	{"deny-errno", checkDenyErrno},
	{"unknown-field", checkUnknownFields},
	{"signature", checkSignature},
	{"dangerous-syscall", lintDangerous},
	{"arg-32bit", lint32BitArgs},
	{"open-read-only", lintReadOnlyOpen},
	{"tokio", lintTokio},
}

// Validate parses raw and runs every check. The whitelist is nil when the
// document could not be decoded at all; otherwise it is returned even when
// the report has errors, so that callers can explain it. Use Report.Err to
// decide whether the whitelist may be used.
func (v *Validator) Validate(raw []byte, opts Options) (*Whitelist, Report) {
	var r Report
	defer r.sort()
	if len(raw) > MaxWhitelistSize {
		r.errorf(clawerr.EProto, "size", "", "", "whitelist is %d bytes, more than the limit of %d", len(raw), MaxWhitelistSize)
		return nil, r
	}
	if opts.Arch != "" {
		if _, err := ParseArch(string(opts.Arch)); err != nil {
			r.errorf(clawerr.EProto, "arch", "", "", "%v", err)
			return nil, r
		}
	}
	if !syntaxCheck(raw, &r) {
		return nil, r
	}
	if v.schema == nil {
		r.errorf(clawerr.EInternal, "schema", "", "", "no schema to validate with")
		return nil, r
	}
	schemaDiags, err := v.schema.Check(raw)
	if err != nil {
		r.errorf(clawerr.EProto, "json", "", "", "malformed JSON: %v", err)
		return nil, r
	}
	for _, d := range schemaDiags {
		// The signature check reports a malformed or placeholder signature
		// itself, as an error or a warning depending on the environment.
		if d.Path != "signature" {
			r.add(d)
		}
	}
	wl := new(Whitelist)
	if err := json.Unmarshal(raw, wl); err != nil {
		var fc *FieldCaseError
		if errors.As(err, &fc) {
			r.errorf(clawerr.EProto, "json", "", "rename it to "+fc.Want, "%v", err)
		} else if len(r.Errors()) == 0 {
			r.errorf(clawerr.EProto, "json", "", "", "cannot decode the whitelist: %v", err)
		}
		return nil, r
	}
	in := &input{raw: raw, wl: wl, opts: opts, arch: opts.TargetArch()}
	for _, c := range checks {
		c.run(in, &r)
	}
	return wl, r
}

func rulePath(i int, rest ...string) string {
	p := fmt.Sprintf("syscalls[%d]", i)
	for _, s := range rest {
		p += "." + s
	}
	return p
}

func checkSchemaVersion(in *input, r *Report) {
	v := in.wl.SchemaVersion
	major, _, _ := strings.Cut(v, ".")
	if semver().MatchString(v) && major != "1" {
		r.errorf(clawerr.EProto, "schema-version", "schema_version", "this tool reads P1.2 schema 1.x.y",
			"schema_version %s is not supported", v)
	}
}

var semver = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\d+\.\d+\.\d+$`) })

func checkDuplicates(in *input, r *Report) {
	first := map[string]int{}
	for i, rule := range in.wl.Syscalls {
		if j, ok := first[rule.Name]; ok {
			r.errorf(clawerr.EProto, "duplicate-name", rulePath(i, "name"),
				"merge the two rules: one syscall has one permission",
				"syscall %q is already listed at syscalls[%d]", truncate(rule.Name, 64), j)
			continue
		}
		first[rule.Name] = i
	}
}

func checkNames(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		if rule.Name == "" {
			continue
		}
		if _, ok := in.arch.SyscallNumber(rule.Name); ok {
			continue
		}
		var elsewhere []string
		for _, a := range KnownArches() {
			if _, ok := a.SyscallNumber(rule.Name); ok && a != in.arch {
				elsewhere = append(elsewhere, string(a))
			}
		}
		hint := suggest(in.arch, rule.Name)
		if len(elsewhere) > 0 {
			r.warnf(clawerr.ENoEnt, "syscall-name", rulePath(i, "name"), hint,
				"%q is not a syscall on %s (it exists on %s): this rule has no effect on %s",
				truncate(rule.Name, 64), in.arch, strings.Join(elsewhere, ", "), in.arch)
			continue
		}
		r.errorf(clawerr.ENoEnt, "syscall-name", rulePath(i, "name"), hint,
			"%q is not a Linux syscall on %s", truncate(rule.Name, 64), in.arch)
	}
}

func checkConditions(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		c := rule.Conditions
		switch rule.Permission {
		case Conditional:
			if c != nil && c.PortRestriction == nil && c.ArgumentFilter == nil {
				r.errorf(clawerr.EProto, "conditions", rulePath(i, "conditions"),
					"add an argument_filter or a port_restriction, or make the rule ALLOW or DENY",
					"a CONDITIONAL rule needs a port_restriction or an argument_filter; a description alone restricts nothing")
			}
		case Allow, Deny:
			if c != nil {
				r.errorf(clawerr.EProto, "conditions", rulePath(i, "conditions"),
					"make the rule CONDITIONAL, or remove conditions",
					"a %s rule carries conditions, which would be ignored", rule.Permission)
			}
		}
	}
}

func checkArgumentFilter(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		if rule.Conditions == nil || rule.Conditions.ArgumentFilter == nil {
			continue
		}
		af := rule.Conditions.ArgumentFilter
		base := rulePath(i, "conditions", "argument_filter")
		if af.ArgIndex > 5 {
			r.errorf(clawerr.EProto, "argument-filter", base+".arg_index", "use an index from 0 to 5",
				"arg_index %d is out of range: a syscall has at most 6 arguments", af.ArgIndex)
		}
		if _, ok := operators[af.Operator]; !ok {
			continue // the schema reported it
		}
		value, err := af.Value.Uint64()
		if err != nil {
			r.errorf(clawerr.EProto, "argument-filter", base+".value", "use an integer from -2^63 to 2^64-1", "%v", err)
		}
		switch {
		case af.Operator == "masked_eq" && af.Mask == nil:
			r.errorf(clawerr.EProto, "argument-filter", base+".mask", "add a mask, for example 3 for the access mode of openat flags",
				"masked_eq needs a mask")
		case af.Operator != "masked_eq" && af.Mask != nil:
			r.errorf(clawerr.EProto, "argument-filter", base+".mask", "remove the mask, or use masked_eq",
				"mask is only used by masked_eq; with %s it would be ignored", af.Operator)
		case af.Mask != nil:
			mask, merr := af.Mask.Uint64()
			if merr != nil {
				r.errorf(clawerr.EProto, "argument-filter", base+".mask", "use an integer from -2^63 to 2^64-1", "%v", merr)
			} else if err == nil && value&^mask != 0 {
				r.errorf(clawerr.EProto, "argument-filter", base+".value", "clear the value's bits outside the mask",
					"value %#x has bits outside mask %#x, so the comparison can never hold", value, mask)
			}
		}
	}
}

// portSyscalls are the syscalls where a port restriction means something:
// socket (limited to the families and types that have ports), and the calls
// that carry a destination or local address.
var portSyscalls = map[string]string{
	"socket":   "seccomp limits it to AF_INET/AF_INET6 stream and datagram sockets",
	"connect":  "the network policy limits destination ports",
	"bind":     "the network policy limits local ports",
	"sendto":   "the network policy limits destination ports",
	"sendmsg":  "the network policy limits destination ports",
	"sendmmsg": "the network policy limits destination ports",
}

func checkPortRestriction(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		if rule.Conditions == nil || rule.Conditions.PortRestriction == nil {
			continue
		}
		base := rulePath(i, "conditions", "port_restriction")
		if _, ok := portSyscalls[rule.Name]; !ok {
			r.errorf(clawerr.EProto, "port-restriction", base,
				"port restrictions apply to socket, connect, bind, sendto, sendmsg and sendmmsg",
				"ports mean nothing to %s", rule.Name)
			continue
		}
		pr := rule.Conditions.PortRestriction
		if len(pr.AllowedPorts) == 0 && pr.AllowedPorts != nil {
			r.errorf(clawerr.EProto, "port-restriction", base+".allowed_ports", "list at least one port, or DENY the syscall",
				"allowed_ports is empty, so no port would be allowed")
		}
		seen := map[int]bool{}
		for j, p := range pr.AllowedPorts {
			if seen[p] {
				r.warnf(clawerr.EProto, "port-restriction", fmt.Sprintf("%s.allowed_ports[%d]", base, j), "remove the duplicate",
					"port %d is listed twice", p)
			}
			seen[p] = true
		}
		if af := rule.Conditions.ArgumentFilter; rule.Name == "socket" && af != nil && af.ArgIndex <= 2 {
			r.errorf(clawerr.EProto, "same-arg", rulePath(i, "conditions", "argument_filter", "arg_index"),
				"drop the argument_filter (the port restriction already limits the family, type and protocol), or the port restriction",
				"socket's port restriction already compares argument %d (family, type or protocol); runc adds several conditions on one argument as separate rules (OR), which would widen the rule", af.ArgIndex)
		}
	}
}

// denyErrnos are the values of the x-clawos-deny-errno extension: the P1.7
// codes that have an errno, and ENOSYS.
func denyErrno(name string) (int, bool) {
	if name == "ENOSYS" {
		return 38, true
	}
	c, err := clawerr.ParseCode(name)
	if err != nil {
		return 0, false
	}
	e, ok := c.Errno()
	return int(e), ok
}

func checkDenyErrno(in *input, r *Report) {
	for i, rule := range in.wl.Syscalls {
		if rule.DenyErrno == "" {
			continue
		}
		p := rulePath(i, "x-clawos-deny-errno")
		if rule.Permission != Deny {
			r.errorf(clawerr.EProto, "deny-errno", p, "remove it, or make the rule DENY",
				"x-clawos-deny-errno only applies to DENY rules")
		}
		if _, ok := denyErrno(rule.DenyErrno); !ok {
			r.errorf(clawerr.EProto, "deny-errno", p, "use EAGAIN, EIO, ENOENT, EPERM, EPROTO, ETIMEOUT or ENOSYS",
				"%q is not a P1.7 code with an errno", rule.DenyErrno)
		}
	}
}

// checkUnknownFields warns about members that the model does not know inside
// rules, where a misspelt member (for example "condition") changes what is
// enforced. Unknown members at the top level and in metadata are kept and
// signed but not reported.
func checkUnknownFields(in *input, r *Report) {
	warn := func(path string, extra map[string]json.RawMessage) {
		for _, k := range sortedKeys(extra) {
			r.warnf(clawerr.EProto, "unknown-field", joinPath(path, k), "check the spelling against the P1.2 schema",
				"unknown member %q is ignored", k)
		}
	}
	for i, rule := range in.wl.Syscalls {
		warn(rulePath(i), rule.Extra)
		if c := rule.Conditions; c != nil {
			warn(rulePath(i, "conditions"), c.Extra)
			if c.PortRestriction != nil {
				warn(rulePath(i, "conditions", "port_restriction"), c.PortRestriction.Extra)
			}
			if c.ArgumentFilter != nil {
				warn(rulePath(i, "conditions", "argument_filter"), c.ArgumentFilter.Extra)
			}
		}
	}
}
