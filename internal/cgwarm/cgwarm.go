// Package cgwarm takes the kernel's wait for a process's first cgroup
// migration off a container's start path.
//
// Moving a process into a cgroup (a write to cgroup.procs, which runc and
// libcontainer make for every container they create) takes the kernel's
// cgroup_threadgroup_rwsem for writing. Unless the cgroup hierarchy was
// mounted with favordynmods, the first writer after a quiet spell waits for
// an RCU grace period before it gets the lock, and writers that follow
// within the next grace period or so do not wait: measured on Linux 6.18,
// 2 vCPUs, 4.4-17.8 ms for the first write and 0.1-0.2 ms for a second one
// up to 15 ms after it (docs/benchmarks.md). Start makes such a write early,
// on a thread of its own, while the launcher plans and prepares the
// container, so that the container's own migration finds the grace period
// over.
//
// The write moves the calling process into the cgroup it is already in
// (and is not made unless that cgroup's cgroup.procs lists the process): it
// changes no membership, needs no privilege the caller lacks to manage
// cgroups anyway (it is skipped where cgroup.procs is not writable), and
// its failure changes nothing but the start's duration. The kernel looks
// the pid up before it takes the lock, so a write of a pid that does not
// exist would not do.
package cgwarm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Root is where the cgroup hierarchies are mounted.
const Root = "/sys/fs/cgroup"

// Start runs Warm in the background and returns at once; its result is
// not waited for. A process that exits while the write waits for its grace
// period exits when the grace period ends (the kernel waits
// uninterruptibly): a failing start can take that much longer to report.
func Start() {
	go func() { _ = Warm(Root, "/proc/self/cgroup") }()
}

// Warm writes the calling process's pid to the cgroup.procs of the cgroup
// it is in, in the first hierarchy of membership (a /proc/PID/cgroup file)
// that is a cgroup file system under root: the unified (v2) hierarchy, at
// root itself or at root/unified on a hybrid host, else a v1 hierarchy
// named after its controllers. It returns once the kernel has moved the
// process into its own cgroup, or why it did not.
func Warm(root, membership string) error {
	b, err := os.ReadFile(membership)
	if err != nil {
		return err
	}
	procs, err := Procs(root, b, isCgroupFS)
	if err != nil {
		return err
	}
	// The file must list this process: a cgroup file system mounted
	// from another root than the one /proc/PID/cgroup is relative to
	// (some containers') could name another cgroup at the same path,
	// and the write would move the process there.
	pid := strconv.Itoa(os.Getpid())
	members, err := os.ReadFile(procs)
	if err != nil {
		return err
	}
	if !lists(members, pid) {
		return fmt.Errorf("%s does not list this process (%s): not its cgroup", procs, pid)
	}
	f, err := os.OpenFile(procs, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.WriteString(pid); err != nil {
		return fmt.Errorf("%s: %w", procs, err)
	}
	return nil
}

// lists reports whether procs, a cgroup.procs file's text, has the line
// pid.
func lists(procs []byte, pid string) bool {
	for _, l := range bytes.Split(procs, []byte("\n")) {
		if string(l) == pid {
			return true
		}
	}
	return false
}

// Procs is the cgroup.procs file of the cgroup that membership (the text
// of a /proc/PID/cgroup file) names, in the first of its hierarchies that
// is mounted under root as a cgroup file system (isCgroup): unified first.
func Procs(root string, membership []byte, isCgroup func(dir string, v2 bool) bool) (string, error) {
	type line struct {
		controllers, path string
	}
	var lines []line
	sc := bufio.NewScanner(bytes.NewReader(membership))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") || strings.Contains(parts[2], "/..") {
			continue
		}
		lines = append(lines, line{parts[1], parts[2]})
	}
	for _, l := range lines {
		if l.controllers != "" {
			continue
		}
		for _, dir := range []string{root, filepath.Join(root, "unified")} {
			if isCgroup(dir, true) {
				return filepath.Join(dir, l.path, "cgroup.procs"), nil
			}
		}
	}
	for _, l := range lines {
		if l.controllers == "" || strings.HasPrefix(l.controllers, "name=") {
			continue
		}
		if dir := filepath.Join(root, l.controllers); isCgroup(dir, false) {
			return filepath.Join(dir, l.path, "cgroup.procs"), nil
		}
	}
	return "", errors.New("no mounted cgroup hierarchy of this process under " + root)
}

// isCgroupFS reports whether dir is the root of a cgroup file system of
// the version asked.
func isCgroupFS(dir string, v2 bool) bool {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return false
	}
	if v2 {
		return st.Type == unix.CGROUP2_SUPER_MAGIC
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC
}
