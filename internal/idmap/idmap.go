// Package idmap makes idmapped bind mounts on the host (Linux 5.12+), for
// an OCI runtime to bind into a sandbox: the mount keeps its idmapping, so
// the runtime need not support a mount's uidMappings itself (runc before
// 1.2 ignores them). Files owned on disk by Mapping.UID and GID appear as
// owned by HostID, the sandbox root's host id, and what the sandbox's root
// creates is owned on disk by UID and GID.
package idmap

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Mapping maps the ids UID and GID on disk to HostID.
type Mapping struct {
	UID, GID, HostID uint32
}

// Stage makes an idmapped, recursive copy of the mount tree at src and
// attaches it at target, a directory (mode 0700) or, for a file, an empty
// file it creates. Undo it with Unstage. The error says when src's filesystem cannot be idmapped.
func Stage(src, target string, m Mapping) error {
	ns, err := userNS(m)
	if err != nil {
		return err
	}
	defer ns.Close()
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("clone the mount of %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(ns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EPERM) {
			return fmt.Errorf("%s cannot be an idmapped mount (its filesystem, or one mounted below it, does not support idmapping on this kernel): %w", src, err)
		}
		return fmt.Errorf("idmap %s: %w", src, err)
	}
	// The mount point is of the source's kind: a directory or a file.
	if err := mountPoint(src, target); err != nil {
		return fmt.Errorf("idmap %s: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		os.Remove(target)
		return fmt.Errorf("attach the idmapped mount of %s: %w", src, err)
	}
	return nil
}

// mountPoint creates target as a mount point for src: a directory, or an
// empty file for a file.
func mountPoint(src, target string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return os.Mkdir(target, 0o700)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// Unstage detaches what Stage attached at target and removes the mount
// point (never its contents: rmdir, or unlink of a file's mount point,
// after the mount is gone). A target that is
// not there is no error.
func Unstage(target string) error {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("detach %s: %w", target, err)
	}
	err := unix.Rmdir(target)
	if errors.Is(err, unix.ENOTDIR) {
		err = unix.Unlink(target) // a file's mount point, empty: it was unmounted
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove %s: %w", target, err)
	}
	return nil
}

// userNS returns a user namespace with m's mapping (inside UID and GID,
// outside HostID): a child is created in it and stopped before it runs
// anything (ptrace stops it at its execve), the namespace is opened, and
// the child is killed.
func userNS(m Mapping) (*os.File, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	// The tracer is this thread: it forks, kills and reaps the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pid, err := syscall.ForkExec(self, []string{self}, &syscall.ProcAttr{Sys: &syscall.SysProcAttr{
		Cloneflags:  unix.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: int(m.UID), HostID: int(m.HostID), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: int(m.GID), HostID: int(m.HostID), Size: 1}},
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}})
	if err != nil {
		return nil, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	defer func() {
		unix.Kill(pid, unix.SIGKILL)
		for {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil && err != unix.EINTR || err == nil && (ws.Exited() || ws.Signaled()) {
				return
			}
		}
	}()
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace for an idmapped mount: %w", err)
	}
	return f, nil
}
