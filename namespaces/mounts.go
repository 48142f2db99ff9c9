package namespaces

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// systemDirs are the host directories a default sandbox sees read-only.
// Where one is a symlink on the host (usr-merged Debian: /bin -> usr/bin),
// the sandbox gets the same symlink instead.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// etcFiles are the only /etc files a default sandbox sees: what a program
// needs to run and resolve names. No shadow, no ssh, no sudoers.
var etcFiles = []string{
	"/etc/passwd", "/etc/group", "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf", "/etc/host.conf",
	"/etc/gai.conf", "/etc/services", "/etc/protocols", "/etc/ld.so.cache", "/etc/localtime", "/etc/ssl/certs",
}

// Bind is a bind mount from the host.
type Bind struct {
	Source, Dest string
	ReadOnly     bool
	// IDMap: idmapped (View.IDMap) even when read-only, as a workspace's
	// git metadata, which git refuses to read when another user owns it.
	// A read-only bind is otherwise not idmapped: the caller's files only
	// it may read stay unreadable to the agent.
	IDMap bool
}

// View describes a sandbox's filesystem.
type View struct {
	// HostRoot is "/" normally; tests point it elsewhere.
	HostRoot string
	// Level is the security level (sizes of tmpfs, /sys).
	Level string
	// PrivateNet: /sys can be mounted only with a private network namespace.
	PrivateNet bool
	// Exec are files the sandbox must see read-only at the same path (the
	// agent's executable), and Workdir the working directory.
	Exec    []string
	Workdir string
	Binds   []Bind
	Tmpfs   []string
	// Custom is true for --rootfs: no system directories are added.
	Custom bool
	// IDMap, when set, makes writable binds idmapped mounts (Linux 5.12+
	// and a filesystem that supports them): the owner of a bind's source
	// on disk is the sandbox's root there, and what the sandbox's root
	// writes belongs to that owner.
	IDMap *IDMap
}

// IDMap maps the owner of a bind's source on disk to the sandbox's root,
// host uid and gid HostID (the first id of its user namespace's range).
type IDMap struct {
	HostID uint32
}

// Mounts returns the OCI mounts of a view and the symlinks to create in the
// (empty) root directory, as path -> target.
func Mounts(v View) ([]specs.Mount, map[string]string, error) {
	if v.HostRoot == "" {
		v.HostRoot = "/"
	}
	host := func(p string) string { return filepath.Join(v.HostRoot, p) }
	// Read-only all the way down: "ro" applies to the bind itself only, so
	// a mount under its source (a tmpfs, a USB disk, another bind) would stay
	// writable; "rro" (mount_setattr with AT_RECURSIVE, Linux 5.12+) makes
	// every submount read-only, and rnosuid/rnodev likewise.
	ro := []string{"rbind", "ro", "rro", "nosuid", "rnosuid", "nodev", "rnodev"}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		// The sandbox's root owns /dev: noexec, as every writable place.
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		// Writable places are noexec: nothing written there can be
		// executed or mapped executable (the dynamic loader included).
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=" + TmpfsSize(v.Level)}},
	}
	if Sysfs(v.Level) && v.PrivateNet {
		ms = append(ms, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}})
	}
	links := map[string]string{}
	covered := []string{}
	if !v.Custom {
		for _, d := range systemDirs {
			fi, err := os.Lstat(host(d))
			if err != nil {
				continue
			}
			if fi.Mode()&os.ModeSymlink != 0 {
				t, err := os.Readlink(host(d))
				if err != nil {
					return nil, nil, clawerr.Wrap(clawerr.EIO, err, "read link "+d)
				}
				links[d] = t
				continue
			}
			ms = append(ms, specs.Mount{Destination: d, Type: "bind", Source: host(d), Options: ro})
			covered = append(covered, d)
		}
		for _, f := range etcFiles {
			src, err := filepath.EvalSymlinks(host(f))
			if err != nil {
				continue
			}
			ms = append(ms, specs.Mount{Destination: f, Type: "bind", Source: src, Options: ro})
		}
	}
	for _, e := range v.Exec {
		if under(e, covered) {
			continue
		}
		ms = append(ms, specs.Mount{Destination: e, Type: "bind", Source: e, Options: ro})
		covered = append(covered, e)
	}
	if v.Workdir != "" && v.Workdir != "/" && !under(v.Workdir, covered) && !under(v.Workdir, []string{"/tmp"}) {
		ms = append(ms, specs.Mount{Destination: v.Workdir, Type: "bind", Source: v.Workdir, Options: ro})
	}
	for _, b := range v.Binds {
		if !filepath.IsAbs(b.Source) || !filepath.IsAbs(b.Dest) {
			return nil, nil, clawerr.New(clawerr.EProto, fmt.Sprintf("bind %s:%s: paths must be absolute", b.Source, b.Dest))
		}
		opts := []string{"rbind", "nosuid", "rnosuid", "nodev", "rnodev"}
		if b.ReadOnly {
			opts = append(opts, "ro", "rro")
		} else {
			opts = append(opts, "noexec", "rnoexec")
		}
		m := specs.Mount{Destination: b.Dest, Type: "bind", Source: b.Source, Options: opts}
		if v.IDMap != nil && (!b.ReadOnly || b.IDMap) {
			uid, gid, err := Owner(b.Source)
			if err != nil {
				return nil, nil, err
			}
			// The agent owns what it writes, so it may set S_ISUID on it:
			// as root's, such a file would be setuid root on the host.
			if uid == 0 && !b.ReadOnly {
				return nil, nil, &clawerr.Error{Code: clawerr.EPerm, Message: fmt.Sprintf("the writable bind %s is owned by root: what the agent writes there would be root's on the host, and it could leave a setuid-root program there", b.Source),
					Hint: "give the directory to an unprivileged owner (chown USER DIR: the agent then writes as that user), or run clawos-run as that user"}
			}
			m.UIDMappings = []specs.LinuxIDMapping{{ContainerID: uid, HostID: v.IDMap.HostID, Size: 1}}
			m.GIDMappings = []specs.LinuxIDMapping{{ContainerID: gid, HostID: v.IDMap.HostID, Size: 1}}
		}
		ms = append(ms, m)
	}
	for _, t := range v.Tmpfs {
		if !filepath.IsAbs(t) {
			return nil, nil, clawerr.New(clawerr.EProto, fmt.Sprintf("tmpfs %s: path must be absolute", t))
		}
		ms = append(ms, specs.Mount{Destination: t, Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=" + TmpfsSize(v.Level)}})
	}
	return ms, links, nil
}

// Owner is the owner and group of path on disk.
func Owner(path string) (uid, gid uint32, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, clawerr.Wrap(clawerr.ENoEnt, err, "bind "+path)
	}
	return st.Uid, st.Gid, nil
}

// MaxExecPlaces is how many places clawos-init accepts for its Landlock
// execute rules (its MAX_EXEC).
const MaxExecPlaces = 64

// ExecPlaces are the places of the view whose programs the agent may
// execute where its whitelist allows execve: the read-only ones, as paths
// in the sandbox for clawos-init's Landlock rules. In the default view,
// the system directories (a symlinked one, /bin -> usr/bin, is covered by
// its target), the files of Exec (the agent and interpreters from outside
// the view) and the read-only binds; with a root filesystem of the user's
// (Custom, its host directory root), the entries at the top of that root
// but the sandbox-managed ones (/dev, /proc, /sys, /tmp, /run) and
// symlinks, plus the read-only binds. Never a writable bind or tmpfs, /tmp
// or /dev. files (what execve opens to start the agent) are added. Places
// under another place are left out; more than MaxExecPlaces is an error.
func (v View) ExecPlaces(root string, files []string) ([]string, error) {
	hostRoot := v.HostRoot
	if hostRoot == "" {
		hostRoot = "/"
	}
	var places []string
	if v.Custom {
		entries, err := os.ReadDir(root)
		if err != nil {
			return nil, clawerr.Wrap(clawerr.EIO, err, "read the root filesystem")
		}
		for _, e := range entries {
			p := "/" + e.Name()
			if e.Type()&os.ModeSymlink != 0 || Managed(p) {
				continue
			}
			places = append(places, p)
		}
	} else {
		for _, d := range systemDirs {
			if fi, err := os.Lstat(filepath.Join(hostRoot, d)); err == nil && fi.IsDir() {
				places = append(places, d)
			}
		}
		places = append(places, v.Exec...)
	}
	for _, b := range v.Binds {
		if b.ReadOnly {
			places = append(places, b.Dest)
		}
	}
	places = append(places, files...)
	sort.Strings(places)
	var out []string
	for _, p := range places {
		if len(out) == 0 || !under(p, out) {
			out = append(out, p)
		}
	}
	if len(out) > MaxExecPlaces {
		return nil, clawerr.New(clawerr.EProto, fmt.Sprintf("%d read-only places to allow execution in, at most %d: use fewer --ro-bind mounts", len(out), MaxExecPlaces))
	}
	return out, nil
}

// NoExecWritable makes every writable mount of ms noexec (and every mount
// below a writable bind: rnoexec), a bundle's own mounts included: what the
// agent writes never runs, whatever Landlock can express.
func NoExecWritable(ms []specs.Mount) {
	for i := range ms {
		opts := ms[i].Options
		if slices.Contains(opts, "ro") {
			continue
		}
		if !slices.Contains(opts, "noexec") {
			opts = append(opts, "noexec")
		}
		if slices.Contains(opts, "rbind") && !slices.Contains(opts, "rnoexec") {
			opts = append(opts, "rnoexec")
		}
		ms[i].Options = opts
	}
}

// HostPath is the host file that backs path p in the sandbox's view, for
// reading it before the sandbox exists (a command and its interpreters):
// under the destination of a bind (the longest; later binds win on equal
// ones, as they are mounted later), the bind's source; under a system
// directory of the default view, or at one of its /etc files, the same path
// on the host (the view's symlinks, /bin -> usr/bin, are the host's). ok is
// false where the view shows nothing of the host at p. p is absolute and
// clean.
func (v View) HostPath(p string) (string, bool) {
	hostRoot := v.HostRoot
	if hostRoot == "" {
		hostRoot = "/"
	}
	best := -1
	for i, b := range v.Binds {
		if under(p, []string{b.Dest}) && (best < 0 || len(b.Dest) >= len(v.Binds[best].Dest)) {
			best = i
		}
	}
	if best >= 0 {
		b := v.Binds[best]
		rel, err := filepath.Rel(b.Dest, p)
		if err != nil {
			return "", false
		}
		return filepath.Join(b.Source, rel), true
	}
	if !v.Custom && (under(p, systemDirs) || under(p, etcFiles)) {
		return filepath.Join(hostRoot, p), true
	}
	return "", false
}

// managedDirs are the paths a sandbox manages itself: its own /proc, /dev,
// /sys, private /tmp and /run, and its curated /etc. A host directory bound
// over or under one of them would show the host's instead (its processes,
// its whole /etc).
var managedDirs = []string{"/proc", "/sys", "/dev", "/tmp", "/run", "/var/run", "/etc"}

// Managed reports whether dir is, or is under, a path the sandbox manages
// itself (managedDirs): a host directory bound there would shadow it.
func Managed(dir string) bool { return under(filepath.Clean(dir), managedDirs) }

// ImplicitWorkdir says whether the caller's current directory cwd may be
// made visible (read-only, at the same path) without being asked for: not
// a sandbox-managed path or anything under one, and not the caller's home
// (home), /root or a directory above them. reason says why not.
func ImplicitWorkdir(cwd, home string) (ok bool, reason string) {
	cwd = filepath.Clean(cwd)
	if Managed(cwd) {
		return false, "it is, or is under, a path the sandbox manages itself (/proc, /sys, /dev, /tmp, /run, /etc)"
	}
	for _, h := range []string{home, "/root"} {
		if h != "" && h != "/" && under(filepath.Clean(h), []string{cwd}) && cwd != "/" {
			return false, "it is a home directory, or above one: a home is never made visible implicitly"
		}
	}
	return true, ""
}

func under(p string, dirs []string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

// ParseBind reads "SRC[:DST]" (DST defaults to SRC).
func ParseBind(s string, readOnly bool) (Bind, error) {
	src, dst, ok := strings.Cut(s, ":")
	if !ok {
		dst = src
	}
	if src == "" || dst == "" {
		return Bind{}, clawerr.New(clawerr.EProto, fmt.Sprintf("bind %q: want SRC[:DST]", s))
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return Bind{}, clawerr.Wrap(clawerr.EProto, err, "bind "+s)
	}
	return Bind{Source: abs, Dest: filepath.Clean(dst), ReadOnly: readOnly}, nil
}

// SortedLinks returns the symlinks sorted by path, for deterministic output.
func SortedLinks(links map[string]string) []string {
	out := make([]string, 0, len(links))
	for p := range links {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
