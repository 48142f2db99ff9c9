package sandbox

import (
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// privateRootOptions: the root holds only mount points and symlinks, and
// the runtime remounts it read-only before the agent runs.
const privateRootOptions = "mode=0755,size=64k,nr_inodes=4096"

// onPrivateRoot runs build (which makes the root's mount points in root)
// and then create (which forks the container's init) on the calling
// thread, which must be locked to its goroutine (osThread), with a tmpfs
// on root that only this thread's mount namespace holds: the init the
// thread forks gets a copy of it, the host never sees it, and no mount
// point is made on (and later removed from) the state directory's file
// system, an ext4 /run at a tenth of a millisecond each. The tmpfs is
// private, so detaching it here afterwards leaves the init's copy; the
// thread then returns to the host's mount namespace and working directory,
// as the hand-off and clean-up that may run on it expect.
//
// Where the thread cannot have a mount namespace of its own (unshare
// refused: a container without CAP_SYS_ADMIN), could not find its way back
// (no /proc/thread-self) or cannot mount a tmpfs there, the mount points
// are made in root on the host as before.
func onPrivateRoot(root string, build, create func() error) (err error) {
	onHost := func() error {
		if err := build(); err != nil {
			return err
		}
		return create()
	}
	// The way back, opened first: the host's namespace, and the working
	// directory (O_PATH: whatever its mode, even removed).
	host, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return onHost()
	}
	defer unix.Close(host)
	cwd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return onHost()
	}
	defer unix.Close(cwd)
	if unix.Unshare(unix.CLONE_NEWNS) != nil {
		return onHost()
	}
	defer func() {
		// Back to the host's namespace: nothing else may run in this one.
		// Should that fail, the start fails, and Destroy ends the thread
		// (a locked thread whose goroutine returns ends) with its
		// namespace.
		if serr := unix.Setns(host, unix.CLONE_NEWNS); serr != nil {
			err = clawerr.Wrap(clawerr.EInternal, serr, "return the launcher thread to the host's mount namespace")
			return
		}
		if cerr := unix.Fchdir(cwd); cerr != nil && err == nil {
			err = clawerr.Wrap(clawerr.EIO, cerr, "the launcher's working directory")
		}
	}()
	// Nothing mounted here propagates to the host (a slave first, or no
	// tmpfs at all). Where a mount is refused (an LSM's mount rules), the
	// mount points are made in root on the host, as without a namespace.
	if unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, "") == nil &&
		unix.Mount("clawos-root", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, privateRootOptions) == nil {
		defer unix.Unmount(root, unix.MNT_DETACH)
		if err := unix.Mount("", root, "", unix.MS_PRIVATE, ""); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "the sandbox's root")
		}
	}
	if err := build(); err != nil {
		return err
	}
	return create()
}
