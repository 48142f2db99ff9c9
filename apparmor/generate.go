package apparmor

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/translate"
)

// The P1.6 presets.
const (
	AgentLoop  = "clawos-agent-loop"  // MODERATE
	WasmDaemon = "clawos-wasm-daemon" // STRICT
	KernelSvc  = "clawos-kernel-svc"  // MODERATE
)

// presets adds each P1.6 component's rules to a profile.
var presets = map[string]func(p *Profile){
	AgentLoop: func(p *Profile) {
		p.Comments = append(p.Comments, "P1.6 clawos-agent-loop (MODERATE): TCP to PostgreSQL (5432) on localhost only; AppArmor 3 cannot match ports, the sandbox's network namespace rules enforce them")
		p.Network = append(p.Network, NetworkRule{Family: "inet", Type: "stream", Comment: "port 5432 on localhost: enforced by the network namespace rules"})
		p.Files = append(p.Files,
			FileRule{Path: "/var/lib/clawos/workspace/", Perms: "r"},
			FileRule{Path: "/var/lib/clawos/workspace/**", Perms: "rwk", Comment: "the agent's workspace"},
			FileRule{Path: "/etc/clawos/**", Perms: "r"},
			FileRule{Path: "/var/log/clawos/**", Perms: "rw", Comment: "logs"},
			FileRule{Path: "/run/clawos/**", Perms: "rwk", Comment: "runtime state"})
		sensitiveWrites(p, true)
		p.Ptrace = append(p.Ptrace, PeerRule{Access: []string{"read", "trace"}, Peer: "unconfined", Deny: true})
	},
	WasmDaemon: func(p *Profile) {
		p.Comments = append(p.Comments, "P1.6 clawos-wasm-daemon (STRICT): no network of any family, no mounts, no ptrace, no capability")
		p.DenyAllNetwork = true
		p.Files = append(p.Files,
			FileRule{Path: "/var/lib/clawos/wasm-sandbox/", Perms: "r"},
			FileRule{Path: "/var/lib/clawos/wasm-sandbox/**", Perms: "rwk", Comment: "the WASM sandbox's files"})
		p.DenyMount, p.DenyUmount, p.DenyPivotRoot, p.DenyAllCapabilities = true, true, true, true
		p.Ptrace = append(p.Ptrace, PeerRule{Deny: true})
		sensitiveWrites(p, false)
	},
	KernelSvc: func(p *Profile) {
		p.Comments = append(p.Comments, "P1.6 clawos-kernel-svc (MODERATE)")
		p.Network = append(p.Network, NetworkRule{Family: "unix", Type: "stream"}, NetworkRule{Family: "inet", Type: "stream"})
		p.Files = append(p.Files,
			FileRule{Path: "/var/lib/clawos/kernel/**", Perms: "rwk"},
			FileRule{Path: "/etc/clawos/**", Perms: "r"},
			FileRule{Path: "/var/log/clawos/**", Perms: "rw"},
			FileRule{Path: "/run/clawos/**", Perms: "rwk"})
		sensitiveWrites(p, false)
		p.Ptrace = append(p.Ptrace, PeerRule{Access: []string{"read", "trace"}, Peer: "unconfined", Deny: true})
	},
}

// CheckPreset refuses a preset name that is not one of KnownPresets; ""
// (no preset) passes.
func CheckPreset(name string) error {
	if _, ok := presets[name]; name != "" && !ok {
		return &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("unknown AppArmor preset %q", name),
			Hint: "known presets: " + strings.Join(KnownPresets(), ", ")}
	}
	return nil
}

// KnownPresets lists the P1.6 presets, sorted.
func KnownPresets() []string {
	out := make([]string, 0, len(presets))
	for n := range presets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// sensitiveWrites adds the P1.6 deny rules for sensitive paths. P1.6 also
// denies every write under /dev for the agent loop (devWrites): that includes
// /dev/null, which the preset therefore cannot write either.
func sensitiveWrites(p *Profile, devWrites bool) {
	for _, path := range []string{"/etc/passwd", "/etc/shadow", "/etc/sudoers", "/etc/ssh/**", "/sys/module/**", "/proc/sys/**"} {
		p.Files = append(p.Files, FileRule{Path: path, Perms: "w", Deny: true})
	}
	if devWrites {
		p.Files = append(p.Files, FileRule{Path: "/dev/**", Perms: "w", Deny: true, Comment: "P1.6: no writes under /dev"})
	}
}

// base are the rules any agent started by runc through clawos-init needs:
// the dynamic loader and libraries, the few device files programs use,
// clawos-init's own files, /proc of its own processes, the private /tmp, and
// signals from clawos-run (unconfined) and within the profile.
func base(p *Profile) {
	for _, d := range []string{"/usr/lib/**", "/lib/**", "/lib64/**", "/usr/lib64/**", "/lib32/**", "/usr/libexec/**"} {
		p.Files = append(p.Files, FileRule{Path: d, Perms: "mr"})
	}
	p.Files = append(p.Files,
		FileRule{Path: "/etc/ld.so.cache", Perms: "r"},
		FileRule{Path: "/etc/{passwd,group,hosts,resolv.conf,nsswitch.conf,host.conf,gai.conf,services,protocols,localtime}", Perms: "r"},
		FileRule{Path: "/usr/share/zoneinfo/**", Perms: "r"},
		FileRule{Path: "/etc/ssl/certs/**", Perms: "r"},
		FileRule{Path: "/dev/{null,zero,full,tty}", Perms: "rw"},
		FileRule{Path: "/dev/{random,urandom}", Perms: "r"},
		FileRule{Path: "/dev/pts/*", Perms: "rw"},
		FileRule{Path: "/dev/.clawos/**", Perms: "mr", Comment: "clawos-init and the agent's filter"},
		FileRule{Path: "/proc/**", Perms: "r", Comment: "the sandbox's own processes (pid namespace)"},
		FileRule{Path: "/tmp/", Perms: "r"},
		FileRule{Path: "/tmp/**", Perms: "rwk", Comment: "the private /tmp"},
		FileRule{Path: "/dev/shm/**", Perms: "rwk"},
	)
	p.Signal = append(p.Signal,
		PeerRule{Access: []string{"receive"}, Peer: "unconfined"},
		PeerRule{Access: []string{"send", "receive"}, Peer: p.Name})
	p.Ptrace = append(p.Ptrace, PeerRule{Access: []string{"read"}, Peer: p.Name})
}

// Input is what a profile is generated from.
type Input struct {
	// Name of the profile; default the preset's name, or "clawos-agent".
	Name string
	// Preset is a P1.6 preset (KnownPresets), or "".
	Preset string
	// Agent is the agent stage of the whitelist (its network policy and the
	// rules it allows).
	Agent *translate.Profile
	// Mounts of the sandbox: read-only binds give r, writable ones rw.
	Mounts []specs.Mount
	// Exec are the agent's executable and its interpreters.
	Exec []string
}

// Generate builds the profile of a sandbox.
func Generate(in Input) (*Profile, error) {
	p := &Profile{Name: in.Name, Flags: []string{"attach_disconnected", "mediate_deleted"}}
	if p.Name == "" {
		p.Name = in.Preset
	}
	if p.Name == "" {
		p.Name = "clawos-agent"
	}
	base(p)
	if in.Preset != "" {
		if err := CheckPreset(in.Preset); err != nil {
			return nil, err
		}
		presets[in.Preset](p)
	}
	switch {
	case in.Agent == nil:
	case p.DenyAllNetwork:
		// The preset denies every family; the whitelist cannot widen it.
		if allowsSockets(in.Agent) {
			p.Comments = append(p.Comments, "the whitelist allows sockets, but this preset denies every network family: no socket can be created")
		}
	default:
		network(p, in.Agent)
	}
	for _, e := range in.Exec {
		p.Files = append(p.Files, FileRule{Path: e, Perms: "mrix", Comment: "the agent (Landlock allows executing only this)"})
	}
	for _, m := range in.Mounts {
		if r, ok := mountRule(m); ok {
			p.Files = append(p.Files, r...)
		}
	}
	return p, nil
}

// network mirrors what the agent's seccomp stage lets socket create: no
// network at all when socket is not allowed; the families and types of a
// port-restricted socket rule; every family for an unconditional ALLOW. The
// ports themselves are comments: the network namespace rules enforce them.
func network(p *Profile, agent *translate.Profile) {
	verdict := ""
	unixPair := false
	for _, o := range agent.Origins {
		switch o.Syscall {
		case "socket":
			verdict = o.Verdict
		case "socketpair":
			unixPair = strings.HasPrefix(o.Verdict, "allow")
		}
	}
	if unixPair {
		p.Network = append(p.Network, NetworkRule{Family: "unix", Type: "stream", Comment: "socketpair"})
	}
	switch {
	case verdict == "allow":
		p.Network = append(p.Network, NetworkRule{Family: "inet"}, NetworkRule{Family: "inet6"}, NetworkRule{Family: "unix"})
	case strings.HasPrefix(verdict, "allow if family is AF_INET"):
		ports := ""
		if agent.Network.Restricted() {
			ports = fmt.Sprintf("ports %v: enforced by the network namespace rules", agent.Network.ConnectPorts)
			p.Comments = append(p.Comments, "port restrictions (AppArmor 3 cannot match ports): connect "+fmt.Sprint(agent.Network.ConnectPorts)+", bind "+fmt.Sprint(agent.Network.BindPorts))
		}
		for _, fam := range []string{"inet", "inet6"} {
			for _, typ := range []string{"stream", "dgram"} {
				p.Network = append(p.Network, NetworkRule{Family: fam, Type: typ, Comment: ports})
			}
		}
	case !unixPair && len(p.Network) == 0:
		p.DenyAllNetwork = true
	}
}

func allowsSockets(agent *translate.Profile) bool {
	for _, o := range agent.Origins {
		if (o.Syscall == "socket" || o.Syscall == "socketpair") && strings.HasPrefix(o.Verdict, "allow") {
			return true
		}
	}
	return false
}

// mountRule turns a bind or tmpfs mount into file rules.
func mountRule(m specs.Mount) ([]FileRule, bool) {
	dest := filepath.Clean(m.Destination)
	if dest == "/" || strings.HasPrefix(dest, "/proc") || strings.HasPrefix(dest, "/dev") || strings.HasPrefix(dest, "/sys") {
		return nil, false
	}
	perms := "r"
	switch m.Type {
	case "tmpfs":
		perms = "rwk"
	case "bind":
		perms = "rwk"
		for _, o := range m.Options {
			if o == "ro" {
				perms = "r"
			}
		}
	default:
		return nil, false
	}
	if !validPath(dest) || strings.ContainsAny(dest, "{}*[]^") {
		return nil, false // Render would refuse it; such a path is not granted
	}
	dir := m.Type == "tmpfs"
	if m.Type == "bind" {
		if fi, err := os.Stat(m.Source); err == nil && fi.IsDir() {
			dir = true
		}
	}
	if !dir {
		return []FileRule{{Path: dest, Perms: perms}}, true
	}
	if perms == "r" && (strings.HasPrefix(dest, "/usr") || strings.HasPrefix(dest, "/lib") || dest == "/bin" || dest == "/sbin") {
		perms = "mr"
	}
	return []FileRule{{Path: dest + "/", Perms: "r"}, {Path: dest + "/**", Perms: perms}}, true
}
