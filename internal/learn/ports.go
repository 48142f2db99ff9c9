package learn

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// Socket addresses a learn run reads from the agent's memory, as evidence
// for port proposals. They are read while the call waits for the
// supervisor's answer; the agent could change them right after (user
// notification's usual TOCTOU), which is why they serve a proposal only:
// the learned whitelist is enforced by nftables and Landlock on the real
// destinations, never by these values.

// MemReader reads n bytes at addr of process pid (process_vm_readv).
type MemReader func(pid uint32, addr uint64, n int) ([]byte, error)

// ReadMem reads another process's memory with process_vm_readv.
func ReadMem(pid uint32, addr uint64, n int) ([]byte, error) {
	if addr == 0 || n <= 0 {
		return nil, fmt.Errorf("no address")
	}
	buf := make([]byte, n)
	got, err := unix.ProcessVMReadv(int(pid), []unix.Iovec{{Base: &buf[0], Len: uint64(n)}},
		[]unix.RemoteIovec{{Base: uintptr(addr), Len: n}}, 0)
	if err != nil {
		return nil, err
	}
	return buf[:got], nil
}

// addrArgs are the calls whose sockaddr is an argument: its pointer and
// length.
var addrArgs = map[string][2]int{"connect": {1, 2}, "bind": {1, 2}, "sendto": {4, 5}}

// maxAddrs bounds the destinations kept per call.
const maxAddrs = 64

// Dest is one socket address seen: the family's name, the address and
// the port (0 for AF_UNIX and other families without ports).
type Dest struct {
	Family string
	Addr   string
	Port   int
}

func (d Dest) String() string {
	if d.Port == 0 {
		return d.Addr + " (" + d.Family + ")"
	}
	return netip.AddrPortFrom(netip.MustParseAddr(d.Addr), uint16(d.Port)).String() + " (" + d.Family + ")"
}

// callAddrs is sockaddrs of a notified call, kept only if the call still
// waited after they were read: otherwise its pid may be another process's
// by now, whose memory is none of the agent's evidence.
func callAddrs(read MemReader, c seccomp.Call, name string) []Dest {
	ds := sockaddrs(read, c.Pid, name, c.Args)
	if c.Valid != nil && !c.Valid() {
		return nil
	}
	return ds
}

// sockaddrs returns the socket addresses call name (args) names in the
// memory of pid: connect's, bind's and sendto's argument, sendmsg's
// msg_name, sendmmsg's msg_name of each message (up to 8).
func sockaddrs(read MemReader, pid uint32, name string, args [6]uint64) []Dest {
	var out []Dest
	one := func(ptr, n uint64) {
		if ptr == 0 || n == 0 || n > 128 {
			return
		}
		b, err := read(pid, ptr, int(n))
		if err != nil {
			return
		}
		if d, ok := parseSockaddr(b); ok {
			out = append(out, d)
		}
	}
	// struct msghdr on 64-bit: msg_name at 0, msg_namelen at 8; struct
	// mmsghdr is a msghdr (56 bytes) and msg_len, 64 bytes.
	msg := func(at uint64) {
		b, err := read(pid, at, 12)
		if err != nil || len(b) < 12 {
			return
		}
		one(binary.LittleEndian.Uint64(b[0:8]), uint64(binary.LittleEndian.Uint32(b[8:12])))
	}
	switch name {
	case "sendmsg":
		msg(args[1])
	case "sendmmsg":
		for i := uint64(0); i < args[2] && i < 8; i++ {
			msg(args[1] + 64*i)
		}
	default:
		if a, ok := addrArgs[name]; ok {
			one(args[a[0]], args[a[1]])
		}
	}
	return out
}

// parseSockaddr reads a struct sockaddr: AF_INET and AF_INET6 with their
// port (network byte order), AF_UNIX with its path.
func parseSockaddr(b []byte) (Dest, bool) {
	if len(b) < 2 {
		return Dest{}, false
	}
	switch binary.LittleEndian.Uint16(b) {
	case unix.AF_INET:
		if len(b) < 8 {
			return Dest{}, false
		}
		return Dest{"AF_INET", netip.AddrFrom4([4]byte(b[4:8])).String(), int(binary.BigEndian.Uint16(b[2:4]))}, true
	case unix.AF_INET6:
		if len(b) < 24 {
			return Dest{}, false
		}
		a := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
		return Dest{"AF_INET6", a.String(), int(binary.BigEndian.Uint16(b[2:4]))}, true
	case unix.AF_UNIX:
		path := strings.TrimRight(string(b[2:]), "\x00")
		if len(b) > 3 && b[2] == 0 {
			path = "@" + strings.TrimRight(string(b[3:]), "\x00") // abstract
		}
		return Dest{"AF_UNIX", path, 0}, true
	}
	return Dest{}, false
}

// DefaultEphemeral is Linux's default ip_local_port_range.
var DefaultEphemeral = [2]int{32768, 60999}

// ephemeralRange reads the host's ip_local_port_range, the default when it
// cannot.
func ephemeralRange() [2]int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return DefaultEphemeral
	}
	var lo, hi int
	if _, err := fmt.Sscanf(string(b), "%d %d", &lo, &hi); err != nil || lo <= 0 || hi < lo {
		return DefaultEphemeral
	}
	return [2]int{lo, hi}
}

// portCalls are the calls a port_restriction can be proposed for: the
// destination ports of connect and the send calls, bind's local ports.
var portCalls = map[string]bool{"connect": true, "bind": true, "sendto": true, "sendmsg": true, "sendmmsg": true}

// proposePorts returns a port_restriction of the ports st saw (TCP and
// UDP over IPv4 and IPv6; port 0, an ephemeral bind, is no proposal), with
// the destinations in the note; nil when none was seen.
func proposePorts(name string, st *Stat, ephemeral [2]int) (*translate.Conditions, string) {
	if !portCalls[name] || len(st.Dests) == 0 {
		return nil, ""
	}
	set := map[int]bool{}
	var seen []string
	transient := false
	for d, n := range st.Dests {
		if d.Port > 0 && (d.Family == "AF_INET" || d.Family == "AF_INET6") {
			set[d.Port] = true
			transient = transient || d.Port >= ephemeral[0] && d.Port <= ephemeral[1]
		}
		seen = append(seen, fmt.Sprintf("%s x%d", d, n))
	}
	sort.Strings(seen)
	if len(set) == 0 {
		return nil, ""
	}
	if transient {
		// A port the kernel assigned (a listener of the agent's own on port
		// 0, say) differs at the next run: restricting to it would break
		// the agent.
		return nil, fmt.Sprintf("no port proposal: a port of the ephemeral range %d-%d was seen (assigned per run); addresses seen: %s",
			ephemeral[0], ephemeral[1], strings.Join(seen, ", "))
	}
	ports := make([]int, 0, len(set))
	for p := range set {
		ports = append(ports, p)
	}
	sort.Ints(ports)
	what := "destination"
	if name == "bind" {
		what = "local"
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = fmt.Sprint(p)
	}
	return &translate.Conditions{Description: fmt.Sprintf("proposal: %s ports %s only (the only ones seen)", what, strings.Join(s, ", ")),
			PortRestriction: &translate.PortRestriction{AllowedPorts: ports}},
		"proposal: port_restriction of the ports seen; addresses seen: " + strings.Join(seen, ", ") + "; review before promoting"
}
