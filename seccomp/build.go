package seccomp

import (
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/translate"
)

// actions maps OCI actions to libseccomp actions. Errno-carrying actions get
// their errno from the rule.
var actions = map[specs.LinuxSeccompAction]libseccomp.ScmpAction{
	specs.ActKill:        libseccomp.ActKillThread,
	specs.ActKillThread:  libseccomp.ActKillThread,
	specs.ActKillProcess: libseccomp.ActKillProcess,
	specs.ActTrap:        libseccomp.ActTrap,
	specs.ActErrno:       libseccomp.ActErrno,
	specs.ActTrace:       libseccomp.ActTrace,
	specs.ActAllow:       libseccomp.ActAllow,
	specs.ActLog:         libseccomp.ActLog,
	specs.ActNotify:      libseccomp.ActNotify,
}

// KnownActions lists the OCI actions Build accepts, sorted.
func KnownActions() []specs.LinuxSeccompAction { return sortedKeys(actions) }

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// compareOps maps OCI operators to libseccomp operators.
var compareOps = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
}

// KnownOperators lists the OCI operators Build accepts, sorted.
func KnownOperators() []specs.LinuxSeccompOperator { return sortedKeys(compareOps) }

func action(a specs.LinuxSeccompAction, errno *uint) (libseccomp.ScmpAction, error) {
	act, ok := actions[a]
	if !ok {
		return 0, clawerr.New(clawerr.EProto, fmt.Sprintf("unknown seccomp action %q", a))
	}
	if act == libseccomp.ActErrno || act == libseccomp.ActTrace {
		e := uint(1) // EPERM, as runc does when errnoRet is absent
		if errno != nil {
			e = *errno
		}
		if e > 4095 {
			return 0, clawerr.New(clawerr.EProto, fmt.Sprintf("errno %d is out of range", e))
		}
		act = act.SetReturnCode(int16(e))
	}
	return act, nil
}

// Build returns a libseccomp filter for an OCI seccomp section, built the way
// runc builds it (rule per name, several conditions on one argument index
// added as separate rules), with two differences that make it stricter:
// an unknown syscall name is an error instead of being skipped, and a call
// from an architecture the section does not list kills the process
// (runc leaves libseccomp's thread kill). The caller must Release the filter.
func Build(s *specs.LinuxSeccomp) (*libseccomp.ScmpFilter, error) {
	if s == nil {
		return nil, clawerr.New(clawerr.EProto, "no seccomp section")
	}
	def, err := action(s.DefaultAction, s.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	f, err := libseccomp.NewFilter(def)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "create libseccomp filter")
	}
	ok := false
	defer func() {
		if !ok {
			f.Release()
		}
	}()
	if err := f.SetBadArchAction(libseccomp.ActKillProcess); err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "set bad-arch action")
	}
	if err := setArches(f, s.Architectures); err != nil {
		return nil, err
	}
	for i, call := range s.Syscalls {
		if err := addCall(f, call); err != nil {
			return nil, fmt.Errorf("syscalls[%d]: %w", i, err)
		}
	}
	ok = true
	return f, nil
}

func setArches(f *libseccomp.ScmpFilter, list []specs.Arch) error {
	if len(list) == 0 {
		return nil // native only
	}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "native arch")
	}
	keepNative := false
	for _, a := range list {
		arch, err := scmpArch(a)
		if err != nil {
			return err
		}
		if arch == native {
			keepNative = true
			continue
		}
		if err := f.AddArch(arch); err != nil {
			return clawerr.Wrap(clawerr.EInternal, err, "add arch "+string(a))
		}
	}
	if !keepNative {
		if err := f.RemoveArch(native); err != nil {
			return clawerr.Wrap(clawerr.EInternal, err, "remove native arch")
		}
	}
	return nil
}

// scmpArch maps an OCI architecture (SCMP_ARCH_X86_64, SCMP_ARCH_X32...) to
// libseccomp's. Profiles such as Docker's list architectures that whitelists
// cannot target (i386, x32); a filter may still accept their calls.
func scmpArch(a specs.Arch) (libseccomp.ScmpArch, error) {
	if t, err := translate.ParseArch(string(a)); err == nil {
		return t.Seccomp(), nil
	}
	arch, err := libseccomp.GetArchFromString(strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_")))
	if err != nil {
		return 0, &clawerr.Error{Code: clawerr.EProto, Message: fmt.Sprintf("unknown architecture %q", a), Err: err}
	}
	return arch, nil
}

func addCall(f *libseccomp.ScmpFilter, call specs.LinuxSyscall) error {
	act, err := action(call.Action, call.ErrnoRet)
	if err != nil {
		return err
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(call.Args))
	sameIndex := false
	seen := map[uint]bool{}
	for _, a := range call.Args {
		op, ok := compareOps[a.Op]
		if !ok {
			return clawerr.New(clawerr.EProto, fmt.Sprintf("unknown operator %q", a.Op))
		}
		vals := []uint64{a.Value}
		if op == libseccomp.CompareMaskedEqual {
			vals = append(vals, a.ValueTwo)
		}
		c, err := libseccomp.MakeCondition(a.Index, op, vals...)
		if err != nil {
			return clawerr.Wrap(clawerr.EProto, err, "argument condition")
		}
		sameIndex = sameIndex || seen[a.Index]
		seen[a.Index] = true
		conds = append(conds, c)
	}
	for _, name := range call.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			return &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("unknown syscall %q", name), Err: err}
		}
		switch {
		case len(conds) == 0:
			err = f.AddRule(nr, act)
		case sameIndex:
			// As runc: conditions on one index are separate rules (OR).
			for _, c := range conds {
				if err = f.AddRuleConditional(nr, act, []libseccomp.ScmpCondition{c}); err != nil {
					break
				}
			}
		default:
			err = f.AddRuleConditional(nr, act, conds)
		}
		if err != nil {
			return clawerr.Wrap(clawerr.EProto, err, fmt.Sprintf("add rule for %s", name))
		}
	}
	return nil
}
