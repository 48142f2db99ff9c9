package namespaces

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Net is the network mode of a sandbox.
type Net string

// Network modes.
const (
	NetNone     Net = "none"     // a private network namespace, interfaces down, not even lo
	NetLoopback Net = "loopback" // a private network namespace with only lo, up
	NetHost     Net = "host"     // the host's network namespace
	// NetPasta: a private network namespace with real egress through
	// passt's pasta, which the launcher starts (the namespace is made as
	// for NetLoopback).
	NetPasta Net = "pasta"
)

// KnownNets lists the network modes.
func KnownNets() []Net { return []Net{NetHost, NetLoopback, NetNone, NetPasta} }

// Options describe a sandbox's isolation.
type Options struct {
	Net      Net
	UserNS   bool
	Hostname string
	// IDMapBase is the first host uid and gid of the sandbox's 65536 ids
	// (root in the sandbox is IDMapBase on the host).
	IDMapBase uint32
	// Rootless: the caller is not root. The sandbox then maps one id, its
	// root, to the caller's own HostUID and HostGID.
	Rootless         bool
	HostUID, HostGID uint32
	// Level is the P1.2 metadata.security_level (strict, moderate,
	// permissive; "" means strict).
	Level string
	// Slice is a P1.5 slice name, "" for none.
	Slice    string
	CgroupV2 bool
	// NoIOWeight: the host cannot weight block IO (platform.IOWeight), so the
	// slice's io.weight is left out instead of failing the runtime's
	// cgroup setup; the caller says so.
	NoIOWeight bool
	// HardLimits are the caller's own hard rlimits by OCI name
	// (RLIMIT_NOFILE...); a sandbox's limit never exceeds them, since the
	// runtime could not raise it (root on this VM lacks CAP_SYS_RESOURCE).
	HardLimits map[string]uint64
}

// IDMapSize is the number of uids and gids mapped into a user namespace.
const IDMapSize = 65536

// level holds the defaults of a security_level.
type level struct {
	tmpfsSize string // size of /tmp
	nofile    uint64
	nproc     uint64
	sysfs     bool // mount /sys read-only
}

// levels are the security_level defaults, documented in docs/launcher.md.
var levels = map[string]level{
	"strict":     {tmpfsSize: "64m", nofile: 1024, nproc: 512, sysfs: false},
	"moderate":   {tmpfsSize: "256m", nofile: 4096, nproc: 1024, sysfs: true},
	"permissive": {tmpfsSize: "1g", nofile: 16384, nproc: 4096, sysfs: true},
}

// KnownLevels lists the security levels.
func KnownLevels() []string {
	out := make([]string, 0, len(levels))
	for l := range levels {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// Capabilities of a sandbox: none.
var noCaps = &specs.LinuxCapabilities{Bounding: []string{}, Effective: []string{}, Permitted: []string{}, Inheritable: []string{}, Ambient: []string{}}

// maskedPaths are hidden from the sandbox (Docker's list, plus ClawOS's).
var maskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats", "/sys/firmware",
	"/sys/devices/virtual/powercap", "/proc/sysrq-trigger",
}

// readonlyPaths are visible but read-only (Docker's list).
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"}

// Apply fills the isolation of spec: namespaces, id maps, capabilities,
// no_new_privs, read-only root, masked and read-only paths, rlimits,
// hostname and resources. Mounts are set by Mounts.
func Apply(spec *specs.Spec, o Options) error {
	lvl, err := prepare(spec, o.Level)
	if err != nil {
		return err
	}
	ns := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace}, {Type: specs.IPCNamespace},
		{Type: specs.UTSNamespace}, {Type: specs.CgroupNamespace}}
	switch o.Net {
	case NetNone, NetLoopback, NetPasta, "":
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	case NetHost:
	default:
		return clawerr.New(clawerr.EProto, fmt.Sprintf("unknown network mode %q (want none, loopback, pasta or host)", o.Net))
	}
	spec.Linux.UIDMappings, spec.Linux.GIDMappings = nil, nil
	switch {
	case o.Rootless:
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
		spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: o.HostUID, Size: 1}}
		spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: o.HostGID, Size: 1}}
	case o.UserNS:
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace})
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: o.IDMapBase, Size: IDMapSize}}
		spec.Linux.UIDMappings, spec.Linux.GIDMappings = m, m
	}
	spec.Linux.Namespaces = ns
	spec.Process.Capabilities = noCaps
	spec.Process.NoNewPrivileges = true
	if spec.Root == nil {
		spec.Root = &specs.Root{Path: "rootfs"}
	}
	spec.Root.Readonly = true
	spec.Linux.MaskedPaths = maskedPaths
	spec.Linux.ReadonlyPaths = readonlyPaths
	spec.Hostname = o.Hostname
	if spec.Hostname == "" {
		spec.Hostname = "clawos-agent"
	}
	spec.Process.Rlimits = []specs.POSIXRlimit{
		capped("RLIMIT_NOFILE", lvl.nofile, o.HardLimits),
		capped("RLIMIT_NPROC", lvl.nproc, o.HardLimits),
		{Type: "RLIMIT_CORE", Hard: 0, Soft: 0},
	}
	spec.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if o.Slice != "" {
		r, err := SliceResources(o.Slice, o.CgroupV2)
		if err != nil {
			return err
		}
		if o.NoIOWeight {
			r.BlockIO = nil
		}
		r.Devices = spec.Linux.Resources.Devices
		spec.Linux.Resources = r
	}
	return nil
}

// prepare looks up a security level ("" is strict) and makes sure spec has
// the linux and process sections Apply and Harden fill.
func prepare(spec *specs.Spec, name string) (level, error) {
	lvlName := name
	if lvlName == "" {
		lvlName = "strict"
	}
	lvl, ok := levels[lvlName]
	if !ok {
		return level{}, &clawerr.Error{Code: clawerr.EProto, Path: "metadata.security_level", Message: fmt.Sprintf("unknown security level %q", name)}
	}
	if spec.Linux == nil {
		spec.Linux = &specs.Linux{}
	}
	if spec.Process == nil {
		spec.Process = &specs.Process{}
	}
	return lvl, nil
}

// capped returns an rlimit of value v, lowered to the caller's hard limit.
func capped(name string, v uint64, hard map[string]uint64) specs.POSIXRlimit {
	if h, ok := hard[name]; ok && h < v {
		v = h
	}
	return specs.POSIXRlimit{Type: name, Hard: v, Soft: v}
}

// TmpfsSize is the size of the sandbox's /tmp at a security level.
func TmpfsSize(levelName string) string {
	if l, ok := levels[levelName]; ok {
		return l.tmpfsSize
	}
	return levels["strict"].tmpfsSize
}

// Sysfs reports whether the sandbox gets a read-only /sys at a level.
func Sysfs(levelName string) bool {
	if l, ok := levels[levelName]; ok {
		return l.sysfs
	}
	return false
}

// CgroupV2 reports whether the cgroup filesystem mounted at mount
// (normally /sys/fs/cgroup) is the unified (v2) hierarchy, rather than v1 or
// a hybrid.
func CgroupV2(mount string) bool {
	var st unix.Statfs_t
	return unix.Statfs(mount, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

// Harden tightens a configuration that a container engine made (podman,
// CRI-O, containerd) to the isolation of a sandbox at o.Level, keeping what
// the engine owns: the namespaces it created or joins, its user namespace
// and id maps, hostname, mounts and process user. It adds the
// pid, mount, ipc, uts and cgroup namespaces where missing (never a user or
// network namespace, whose setup is the engine's), drops every capability,
// sets no_new_privs and a read-only root with a private /tmp, hides the
// masked paths, lowers the rlimits to the level's and applies o.Slice. It
// resets the devices to the runtime's default set, makes sysfs and
// cgroupfs read-only, and refuses a config that joins one of the host's
// pid, ipc, uts, mount or cgroup namespaces (HostNamespaces).
// Harden is idempotent.
func Harden(spec *specs.Spec, o Options) error {
	lvl, err := prepare(spec, o.Level)
	if err != nil {
		return err
	}
	if spec.Root == nil {
		return clawerr.New(clawerr.EProto, "the config has no root")
	}
	have := map[specs.LinuxNamespaceType]bool{}
	for _, n := range spec.Linux.Namespaces {
		have[n.Type] = true
	}
	for _, t := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace} {
		if !have[t] {
			spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: t})
		}
	}
	if err := HostNamespaces(spec, "/proc/self/ns"); err != nil {
		return err
	}
	spec.Process.Capabilities = noCaps
	spec.Process.NoNewPrivileges = true
	spec.Root.Readonly = true
	// Devices: the runtime's default set only (null, zero, full, random,
	// urandom, tty, ptmx, ...), whatever the engine asked: a privileged
	// container asks for every host device and an allow-all devices
	// cgroup. And /sys and cgroupfs read-only.
	spec.Linux.Devices = nil
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	for i, m := range spec.Mounts {
		if m.Type == "sysfs" || m.Type == "cgroup" || m.Type == "cgroup2" {
			spec.Mounts[i].Options = readOnly(m.Options)
		}
	}
	tmp := false
	for _, m := range spec.Mounts {
		if m.Destination == "/tmp" {
			tmp = true
		}
	}
	if !tmp {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs",
			Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=" + lvl.tmpfsSize}})
	}
	spec.Linux.MaskedPaths = union(spec.Linux.MaskedPaths, maskedPaths)
	spec.Linux.ReadonlyPaths = union(spec.Linux.ReadonlyPaths, readonlyPaths)
	limits := map[string]uint64{"RLIMIT_NOFILE": lvl.nofile, "RLIMIT_NPROC": lvl.nproc, "RLIMIT_CORE": 0}
	var rl []specs.POSIXRlimit
	for _, r := range spec.Process.Rlimits {
		if v, ok := limits[r.Type]; ok {
			r.Hard, r.Soft = min(r.Hard, v), min(r.Soft, v)
			delete(limits, r.Type)
		}
		rl = append(rl, r)
	}
	for _, name := range []string{"RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE"} {
		if v, ok := limits[name]; ok {
			rl = append(rl, capped(name, v, o.HardLimits))
		}
	}
	spec.Process.Rlimits = rl
	if o.Slice != "" {
		r, err := SliceResources(o.Slice, o.CgroupV2)
		if err != nil {
			return err
		}
		if o.NoIOWeight {
			r.BlockIO = nil
		}
		if spec.Linux.Resources != nil {
			r.Devices = spec.Linux.Resources.Devices
		}
		spec.Linux.Resources = r
	}
	return nil
}

// readOnly returns mount options with "rw" replaced by "ro".
func readOnly(opts []string) []string {
	out := []string{"ro"}
	for _, o := range opts {
		if o != "rw" && o != "ro" {
			out = append(out, o)
		}
	}
	return out
}

// union returns a with the elements of b it lacks appended.
func union(a, b []string) []string {
	seen := map[string]bool{}
	for _, s := range a {
		seen[s] = true
	}
	out := append([]string{}, a...)
	for _, s := range b {
		if !seen[s] {
			out = append(out, s)
		}
	}
	return out
}

// privateNamespaces are the namespaces a confined container never shares
// with the host, each with the engine setting that would ask for it. The
// network namespace is the port policy's concern (shared only without
// port rules), the user namespace the engine's.
var privateNamespaces = []struct {
	typ     specs.LinuxNamespaceType
	proc    string // name under /proc/PID/ns
	what    string
	setting string
}{
	{specs.PIDNamespace, "pid", "PID namespace (the agent would see and signal host processes)", "hostPID, podman --pid=host"},
	{specs.IPCNamespace, "ipc", "IPC namespace", "hostIPC, podman --ipc=host"},
	{specs.UTSNamespace, "uts", "UTS namespace", "hostNetwork (its pods share the host's UTS namespace), podman --uts=host"},
	{specs.MountNamespace, "mnt", "mount namespace", "a mount namespace path"},
	{specs.CgroupNamespace, "cgroup", "cgroup namespace", "a cgroup namespace path"},
}

func sameNamespace(a, b string) (bool, error) {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		return false, err
	}
	if err := unix.Stat(b, &sb); err != nil {
		return false, err
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino, nil
}

func sharedErr(n struct {
	typ     specs.LinuxNamespaceType
	proc    string
	what    string
	setting string
}) error {
	return &clawerr.Error{Code: clawerr.EPerm, Path: "linux.namespaces",
		Message: "a confined container would share the host's " + n.what,
		Hint:    "do not ask for " + n.setting + " for a container with a ClawOS whitelist"}
}

// HostNamespaces refuses a config that joins, by path, one of the
// namespaces of ref (a /proc/PID/ns directory of a process in the host's
// namespaces, such as the engine's hook: "/proc/self/ns"), compared by
// device and inode: an engine points a pod's containers at its sandbox's
// namespaces, which are the host's for hostPID or hostIPC pods. A path that
// cannot be read is refused too.
func HostNamespaces(spec *specs.Spec, ref string) error {
	if spec.Linux == nil {
		return nil
	}
	for _, n := range privateNamespaces {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type != n.typ || ns.Path == "" {
				continue
			}
			same, err := sameNamespace(ns.Path, filepath.Join(ref, n.proc))
			if err != nil {
				return &clawerr.Error{Code: clawerr.EPerm, Path: "linux.namespaces", Message: "cannot compare the " + n.what + " the config joins with the host's", Err: err}
			}
			if same {
				return sharedErr(n)
			}
		}
	}
	return nil
}

// ProcessHostNamespaces refuses a running container process pid that is
// in one of ref's namespaces, joined by path or inherited: what the
// runtime actually made, checked again before the agent starts.
func ProcessHostNamespaces(pid int, ref string) error {
	for _, n := range privateNamespaces {
		same, err := sameNamespace(filepath.Join("/proc", strconv.Itoa(pid), "ns", n.proc), filepath.Join(ref, n.proc))
		if err != nil {
			return &clawerr.Error{Code: clawerr.EPerm, Path: "linux.namespaces", Message: "cannot compare the container's " + n.what + " with the host's", Err: err}
		}
		if same {
			return sharedErr(n)
		}
	}
	return nil
}
