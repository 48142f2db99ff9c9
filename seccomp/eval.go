package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Verdict is a seccomp return value: an action in the upper 16 bits and its
// data (the errno of SCMP_ACT_ERRNO) in the lower 16.
type Verdict uint32

// Seccomp return actions (include/uapi/linux/seccomp.h).
const (
	RetKillProcess Verdict = 0x80000000
	RetKillThread  Verdict = 0x00000000
	RetTrap        Verdict = 0x00030000
	RetErrno       Verdict = 0x00050000
	RetUserNotif   Verdict = 0x7fc00000
	RetTrace       Verdict = 0x7ff00000
	RetLog         Verdict = 0x7ffc0000
	RetAllow       Verdict = 0x7fff0000

	retActionFull = 0xffff0000
	retData       = 0x0000ffff
)

var verdictNames = map[Verdict]string{
	RetKillProcess: "KILL_PROCESS", RetKillThread: "KILL_THREAD", RetTrap: "TRAP", RetErrno: "ERRNO",
	RetUserNotif: "USER_NOTIF", RetTrace: "TRACE", RetLog: "LOG", RetAllow: "ALLOW",
}

// Action returns the action part of the verdict.
func (v Verdict) Action() Verdict { return v & retActionFull }

// Data returns the data part (the errno of an ERRNO verdict).
func (v Verdict) Data() uint16 { return uint16(v & retData) }

// String renders "ALLOW", "ERRNO(1)", "KILL_PROCESS".
func (v Verdict) String() string {
	name, ok := verdictNames[v.Action()]
	if !ok {
		return fmt.Sprintf("%#08x", uint32(v))
	}
	switch v.Action() {
	case RetErrno, RetTrace, RetTrap:
		return fmt.Sprintf("%s(%d)", name, v.Data())
	}
	return name
}

// Input is one syscall as a seccomp filter sees it (struct seccomp_data).
type Input struct {
	Arch uint32 // AUDIT_ARCH_* value
	Nr   int32
	IP   uint64
	Args [6]uint64
}

// Evaluator runs an exported program in a userspace BPF virtual machine. It
// is safe for concurrent use.
type Evaluator struct{ vm *bpf.VM }

// NewEvaluator prepares p for evaluation.
func NewEvaluator(p *Program) (*Evaluator, error) {
	ins, ok := bpf.Disassemble(p.Instructions)
	if !ok {
		return nil, clawerr.New(clawerr.EProto, "the program has instructions a seccomp filter cannot contain")
	}
	vm, err := bpf.NewVM(ins)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EProto, err, "invalid BPF program")
	}
	return &Evaluator{vm: vm}, nil
}

// Evaluate returns the verdict of the program for in. seccomp_data is laid
// out as on a little-endian machine (x86_64, aarch64); the VM loads words
// big-endian, so every 32-bit word is written big-endian at its
// little-endian offset, and each load reads the value the kernel would.
func (e *Evaluator) Evaluate(in Input) Verdict {
	var data [64]byte
	put := func(off int, v uint32) { binary.BigEndian.PutUint32(data[off:], v) }
	put(0, uint32(in.Nr))
	put(4, in.Arch)
	put(8, uint32(in.IP))
	put(12, uint32(in.IP>>32))
	for i, a := range in.Args {
		put(16+8*i, uint32(a))
		put(20+8*i, uint32(a>>32))
	}
	v, err := e.vm.Run(data[:])
	if err != nil {
		// Run fails only for programs NewVM rejects; treat as a kill.
		return RetKillThread
	}
	return Verdict(uint32(v))
}

// Stacked is the verdict of filters stacked on one process, as the kernel
// computes it: each filter's verdict, newest first (the order the kernel
// runs them), and the one whose action has the highest precedence wins
// (KILL_PROCESS, KILL_THREAD, TRAP, ERRNO, USER_NOTIF, TRACE, LOG, ALLOW:
// the lowest action as a signed 32-bit value); between equal actions, the
// newest filter's (its errno, say) stands.
func Stacked(newestFirst ...Verdict) Verdict {
	best := RetAllow
	for i, v := range newestFirst {
		if i == 0 || int32(v.Action()) < int32(best.Action()) {
			best = v
		}
	}
	return best
}
