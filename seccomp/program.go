package seccomp

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// MaxInstructions is the kernel's limit on a classic BPF program
// (BPF_MAXINSNS).
const MaxInstructions = 4096

// Program is an exported seccomp BPF program.
type Program struct {
	Instructions []bpf.RawInstruction
}

// Compile builds the filter of an OCI seccomp section and exports its BPF
// program. A program over MaxInstructions is refused: the kernel would
// refuse it at load time, after the container had started.
func Compile(s *specs.LinuxSeccomp) (*Program, error) {
	f, err := Build(s)
	if err != nil {
		return nil, err
	}
	defer f.Release()
	fd, err := unix.MemfdCreate("clawos-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "memfd for BPF export")
	}
	mf := os.NewFile(uintptr(fd), "clawos-bpf")
	defer mf.Close()
	if err := f.ExportBPF(mf); err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "export BPF")
	}
	if _, err := mf.Seek(0, io.SeekStart); err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "read exported BPF")
	}
	raw, err := io.ReadAll(mf)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "read exported BPF")
	}
	p, err := ParseProgram(raw)
	if err != nil {
		return nil, err
	}
	if p.Len() > MaxInstructions {
		return nil, &clawerr.Error{Code: clawerr.EProto,
			Message: fmt.Sprintf("the filter has %d BPF instructions; the kernel accepts at most %d", p.Len(), MaxInstructions),
			Hint:    "split the whitelist or use fewer argument conditions"}
	}
	return p, nil
}

// ParseProgram reads a program in the kernel's sock_filter layout (8 bytes
// per instruction, native byte order).
func ParseProgram(raw []byte) (*Program, error) {
	if len(raw) == 0 || len(raw)%8 != 0 {
		return nil, clawerr.New(clawerr.EProto, fmt.Sprintf("a BPF program is a multiple of 8 bytes, not %d", len(raw)))
	}
	p := &Program{Instructions: make([]bpf.RawInstruction, len(raw)/8)}
	for i := range p.Instructions {
		b := raw[i*8:]
		p.Instructions[i] = bpf.RawInstruction{
			Op: binary.NativeEndian.Uint16(b[0:]),
			Jt: b[2],
			Jf: b[3],
			K:  binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return p, nil
}

// Len is the number of instructions.
func (p *Program) Len() int { return len(p.Instructions) }

// Bytes returns the program in the kernel's sock_filter layout.
func (p *Program) Bytes() []byte {
	out := make([]byte, 8*len(p.Instructions))
	for i, ins := range p.Instructions {
		b := out[i*8:]
		binary.NativeEndian.PutUint16(b[0:], ins.Op)
		b[2], b[3] = ins.Jt, ins.Jf
		binary.NativeEndian.PutUint32(b[4:], ins.K)
	}
	return out
}

// seccompDataFields names the 32-bit words of struct seccomp_data on a
// little-endian architecture.
var seccompDataFields = map[uint32]string{
	0: "nr", 4: "arch", 8: "ip.lo", 12: "ip.hi",
	16: "arg0.lo", 20: "arg0.hi", 24: "arg1.lo", 28: "arg1.hi", 32: "arg2.lo", 36: "arg2.hi",
	40: "arg3.lo", 44: "arg3.hi", 48: "arg4.lo", 52: "arg4.hi", 56: "arg5.lo", 60: "arg5.hi",
}

// Listing returns a readable listing: one line per instruction with its
// index, the decoded instruction, the seccomp_data field a load reads and
// the action a return yields.
func (p *Program) Listing() string {
	var b strings.Builder
	for i, raw := range p.Instructions {
		ins := raw.Disassemble()
		note := ""
		switch v := ins.(type) {
		case bpf.LoadAbsolute:
			note = seccompDataFields[v.Off]
		case bpf.RetConstant:
			note = Verdict(v.Val).String()
		}
		line := fmt.Sprintf("%04d: %-40s", i, ins)
		if note != "" {
			line += " ; " + note
		}
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	return b.String()
}
