package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOnPrivateRoot, in the kernel: build and create see a tmpfs on root,
// a child forked by create keeps it after onPrivateRoot returns, the host
// never sees it (no mount, no file in root), and the thread is back in the
// host's mount namespace and working directory, also when build fails.
func TestOnPrivateRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CLAWOS_INTEGRATION") != "" {
			t.Fatal("needs root (a mount namespace of the launcher thread's own)")
		}
		t.Skip("needs root")
	}
	// Under a shared mount (systemd makes / shared; this test's machine
	// may not): a mount made in the thread's namespace must not reach it.
	parent := t.TempDir()
	if err := unix.Mount("clawos-test", parent, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(parent, unix.MNT_DETACH) })
	if err := unix.Mount("", parent, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(parent, "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	hostNS, _ := os.Readlink("/proc/self/ns/mnt")
	wd, _ := os.Getwd()
	type result struct {
		err                 error
		fsType              int64
		child               *exec.Cmd
		nsAfter, wdAfter    string
		buildErrNS          string
		buildErr, buildErr2 error
	}
	res := make(chan result)
	go func() {
		runtime.LockOSThread() // ended with the goroutine: a test thread
		var r result
		r.err = onPrivateRoot(root, func() error {
			var st unix.Statfs_t
			if err := unix.Statfs(root, &st); err != nil {
				return err
			}
			r.fsType = st.Type
			return os.Mkdir(filepath.Join(root, "proc"), 0o755)
		}, func() error {
			// A child forked here with a mount namespace of its own, as
			// libcontainer's init has one before Start returns.
			r.child = exec.Command("sleep", "30")
			r.child.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
			return r.child.Start()
		})
		r.nsAfter, _ = os.Readlink("/proc/thread-self/ns/mnt")
		r.wdAfter, _ = os.Getwd()
		boom := errors.New("build failed")
		r.buildErr = onPrivateRoot(root, func() error { return boom }, func() error { return nil })
		r.buildErrNS, _ = os.Readlink("/proc/thread-self/ns/mnt")
		if !errors.Is(r.buildErr, boom) {
			r.buildErr2 = r.buildErr
		}
		res <- r
	}()
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer func() { r.child.Process.Kill(); r.child.Wait() }()
	if r.fsType != unix.TMPFS_MAGIC {
		t.Errorf("build saw file system %#x on root, want tmpfs", r.fsType)
	}
	if r.nsAfter != hostNS || r.buildErrNS != hostNS || r.wdAfter != wd {
		t.Errorf("the thread after: namespace %s (after a failed build %s), working directory %s; want %s, %s", r.nsAfter, r.buildErrNS, r.wdAfter, hostNS, wd)
	}
	if r.buildErr2 != nil {
		t.Errorf("a failed build: %v", r.buildErr2)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("the host's root holds %v", entries)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), root) {
		t.Errorf("the tmpfs shows on the host:\n%s", mi)
	}
	// The child keeps its copy, with the mount point build made.
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(r.child.Process.Pid), "root", root, "proc")); err != nil {
		t.Errorf("the forked child lost the private root: %v", err)
	}
	if ns, _ := os.Readlink(filepath.Join("/proc", strconv.Itoa(r.child.Process.Pid), "ns/mnt")); ns == hostNS {
		t.Error("the forked child is in the host's mount namespace")
	}
}
