package learn

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// fakeMem is an agent's memory for the tests: bytes by address.
type fakeMem map[uint64][]byte

func (m fakeMem) read(_ uint32, addr uint64, n int) ([]byte, error) {
	b, ok := m[addr]
	if !ok {
		return nil, fmt.Errorf("EFAULT")
	}
	if len(b) > n {
		b = b[:n]
	}
	return b, nil
}

func sockaddrIn(port uint16, ip [4]byte) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], ip[:])
	return b
}

func sockaddrIn6(port uint16, ip [16]byte) []byte {
	b := make([]byte, 28)
	binary.LittleEndian.PutUint16(b, unix.AF_INET6)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[8:], ip[:])
	return b
}

func msghdr(name uint64, namelen uint32) []byte {
	b := make([]byte, 56)
	binary.LittleEndian.PutUint64(b, name)
	binary.LittleEndian.PutUint32(b[8:], namelen)
	return b
}

// TestSockaddrs reads the destinations of every network call the way the
// supervisor does, from a fake memory: connect's and bind's argument,
// sendto's, sendmsg's msg_name and each of sendmmsg's; unreadable or
// absent addresses give nothing.
func TestSockaddrs(t *testing.T) {
	v6 := [16]byte{15: 1}
	mapped := [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 7}
	mem := fakeMem{
		0x1000: sockaddrIn(5432, [4]byte{127, 0, 0, 1}),
		0x2000: sockaddrIn6(443, v6),
		0x3000: append([]byte{unix.AF_UNIX, 0}, "/run/db.sock\x00"...),
		0x3100: append([]byte{unix.AF_UNIX, 0, 0}, "abstract"...),
		0x4000: msghdr(0x1000, 16),
		0x5000: append(msghdr(0x2000, 28), make([]byte, 8)...),
		0x5040: msghdr(0x6000, 28),
		0x6000: sockaddrIn6(53, mapped),
	}
	for _, c := range []struct {
		call string
		args [6]uint64
		want []string
	}{
		{"connect", [6]uint64{3, 0x1000, 16}, []string{"127.0.0.1:5432 (AF_INET)"}},
		{"connect", [6]uint64{3, 0x2000, 28}, []string{"[::1]:443 (AF_INET6)"}},
		{"connect", [6]uint64{3, 0x3000, 15}, []string{"/run/db.sock (AF_UNIX)"}},
		{"connect", [6]uint64{3, 0x3100, 11}, []string{"@abstract (AF_UNIX)"}},
		{"bind", [6]uint64{3, 0x1000, 16}, []string{"127.0.0.1:5432 (AF_INET)"}},
		{"sendto", [6]uint64{3, 0x9000, 1, 0, 0x1000, 16}, []string{"127.0.0.1:5432 (AF_INET)"}},
		{"sendto", [6]uint64{3, 0x9000, 1, 0, 0, 0}, nil}, // a connected socket
		{"sendmsg", [6]uint64{3, 0x4000, 0}, []string{"127.0.0.1:5432 (AF_INET)"}},
		{"sendmmsg", [6]uint64{3, 0x5000, 2, 0}, []string{"[::1]:443 (AF_INET6)", "10.0.0.7:53 (AF_INET6)"}},
		{"connect", [6]uint64{3, 0xdead, 16}, nil},   // unreadable
		{"connect", [6]uint64{3, 0x1000, 4096}, nil}, // no sockaddr is that long
	} {
		var got []string
		for _, d := range sockaddrs(mem.read, 1, c.call, c.args) {
			got = append(got, d.String())
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s %x: %q, want %q", c.call, c.args[1], got, c.want)
		}
	}
}

// TestLearnPorts: a recording of an agent that talks to two ports writes
// connect and sendto rules restricted to exactly those ports (with the
// addresses in the notes), bind to its listeners' ports, and nothing for
// calls that named no port (AF_UNIX, connected sockets); two scenarios'
// proposals merge into the ports of both.
func TestLearnPorts(t *testing.T) {
	arch := translate.NativeArch()
	mem := fakeMem{
		0x1000: sockaddrIn(5432, [4]byte{127, 0, 0, 1}),
		0x1100: sockaddrIn(6379, [4]byte{127, 0, 0, 1}),
		0x1200: sockaddrIn(0, [4]byte{}),
		0x3000: append([]byte{unix.AF_UNIX, 0}, "/run/db.sock\x00"...),
	}
	learnRun := func(addrs ...uint64) *translate.Whitelist {
		r := NewRecording(arch)
		r.Read = mem.read
		for _, a := range addrs {
			r.Add(call(t, arch, "connect", 3, a, 16))
			r.Add(call(t, arch, "bind", 4, a, 16))
		}
		r.Add(call(t, arch, "sendto", 3, 0x9000, 1, 0, 0, 0)) // connected
		r.Add(call(t, arch, "connect", 5, 0x3000, 15))
		r.Add(call(t, arch, "bind", 5, 0x1200, 16)) // ephemeral
		raw, err := r.Whitelist(time.Now(), Target{Process: "agent"})
		if err != nil {
			t.Fatal(err)
		}
		return decode(t, raw)
	}
	rule := func(wl *translate.Whitelist, name string) translate.Rule {
		for _, r := range wl.Syscalls {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("no rule for %s", name)
		return translate.Rule{}
	}
	ports := func(r translate.Rule) []int {
		if r.Permission != translate.Conditional || r.Conditions == nil || r.Conditions.PortRestriction == nil {
			return nil
		}
		return r.Conditions.PortRestriction.AllowedPorts
	}
	wl := learnRun(0x1000, 0x1100)
	if got := ports(rule(wl, "connect")); !slices.Equal(got, []int{5432, 6379}) {
		t.Errorf("connect ports %v, want [5432 6379]", got)
	}
	if n := rule(wl, "connect").Notes; !strings.Contains(n, "127.0.0.1:5432 (AF_INET) x1") || !strings.Contains(n, "/run/db.sock (AF_UNIX)") {
		t.Errorf("connect notes lack the addresses seen: %s", n)
	}
	if got := ports(rule(wl, "bind")); !slices.Equal(got, []int{5432, 6379}) {
		t.Errorf("bind ports %v, want [5432 6379] (port 0 is no proposal)", got)
	}
	if r := rule(wl, "sendto"); r.Permission != translate.Allow {
		t.Errorf("sendto on a connected socket named no port, yet: %+v", r)
	}
	// A port the kernel assigned (the agent's own listener on port 0,
	// then a connect to it) changes every run: no proposal, and why.
	eph := NewRecording(arch)
	eph.Read, eph.Ephemeral = fakeMem{0x1000: sockaddrIn(5432, [4]byte{127, 0, 0, 1}), 0x1100: sockaddrIn(41234, [4]byte{127, 0, 0, 1})}.read, DefaultEphemeral
	eph.Add(call(t, arch, "connect", 3, 0x1000, 16))
	eph.Add(call(t, arch, "connect", 3, 0x1100, 16))
	raw, err := eph.Whitelist(time.Now(), Target{Process: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	if r := rule(decode(t, raw), "connect"); r.Permission != translate.Allow || !strings.Contains(r.Notes, "ephemeral range 32768-60999") {
		t.Errorf("a connect to an ephemeral port: %+v", r)
	}
	// A call that no longer waits when its address has been read (its
	// pid may be another process's now) gives no evidence.
	gone := NewRecording(arch)
	gone.Read = mem.read
	c := call(t, arch, "connect", 3, 0x1000, 16)
	c.Valid = func() bool { return false }
	gone.Add(c)
	if d := gone.Calls["connect"].Dests; len(d) != 0 {
		t.Errorf("addresses of a call that no longer waited were kept: %v", d)
	}
	// The learned whitelist translates: the ports become the network
	// policy.
	p, err := translate.Translate(wl, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Network.ConnectPorts, []int{5432, 6379}) || !slices.Equal(p.Network.BindPorts, []int{5432, 6379}) {
		t.Errorf("network policy %+v", p.Network)
	}
	// Two scenarios: the ports of both.
	other := learnRun(0x1000)
	merged, conflicts, err := Merge(other, learnRun(0x1100), time.Now())
	if err != nil || len(conflicts) != 0 {
		t.Fatalf("merge: %v %v", conflicts, err)
	}
	if got := ports(rule(decode(t, merged), "connect")); !slices.Equal(got, []int{5432, 6379}) {
		t.Errorf("merged connect ports %v, want [5432 6379]", got)
	}
}

// TestComplainPorts: under complain mode the network calls report to the
// supervisor even where the filter allows them (NotifyPortCalls), and a
// destination outside the port rules is a would-be violation naming it;
// an allowed port, an ephemeral bind and AF_UNIX are not.
func TestComplainPorts(t *testing.T) {
	arch := translate.ArchX8664
	allowAll := &specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Architectures: []specs.Arch{arch.OCI()},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"connect", "bind", "getpid"}, Action: specs.ActAllow}}}
	prog, err := seccomp.Compile(allowAll)
	if err != nil {
		t.Fatal(err)
	}
	notifying, err := seccomp.Compile(NotifyPortCalls(Complaining(allowAll), arch))
	if err != nil {
		t.Fatal(err)
	}
	e, _ := seccomp.NewEvaluator(notifying)
	for name, want := range map[string]string{"connect": "USER_NOTIF", "bind": "USER_NOTIF", "getpid": "ALLOW"} {
		nr, _ := arch.SyscallNumber(name)
		if got := e.Evaluate(seccomp.Input{Arch: arch.Audit(), Nr: int32(nr)}).String(); got != want {
			t.Errorf("complain filter, %s: %s, want %s", name, got, want)
		}
	}
	c, err := NewComplaints(arch, prog)
	if err != nil {
		t.Fatal(err)
	}
	c.Ports = &PortRules{Connect: []int{5432}, Bind: []int{5432}}
	c.Read = fakeMem{
		0x1000: sockaddrIn(5432, [4]byte{127, 0, 0, 1}),
		0x1100: sockaddrIn(8080, [4]byte{127, 0, 0, 1}),
		0x1200: sockaddrIn(0, [4]byte{}),
		0x3000: append([]byte{unix.AF_UNIX, 0}, "/run/db.sock\x00"...),
	}.read
	for _, a := range []struct {
		name string
		addr uint64
	}{{"connect", 0x1000}, {"connect", 0x1100}, {"connect", 0x1100}, {"bind", 0x1200}, {"bind", 0x1100}, {"connect", 0x3000}} {
		c.Add(call(t, arch, a.name, 3, a.addr, 16))
	}
	got := map[string]Violation{}
	for _, v := range c.Report() {
		got[v.Syscall] = v
	}
	if v := got["connect"]; v.Count != 2 || v.Verdict != "REJECT (port rules)" || !slices.Equal(v.Destinations, []string{"127.0.0.1:8080 (AF_INET)"}) {
		t.Errorf("connect: %+v", v)
	}
	if v := got["bind"]; v.Count != 1 || !slices.Equal(v.Destinations, []string{"127.0.0.1:8080 (AF_INET)"}) {
		t.Errorf("bind: %+v", v)
	}
	if len(got) != 2 {
		t.Errorf("violations %v", got)
	}
}
