package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

func copyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "copy "+src)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "copy to "+dst)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return clawerr.Wrap(clawerr.EIO, err, "copy to "+dst)
	}
	return out.Close()
}

// installInit puts clawos-init (src) at dst, in the bundle's directory of
// ClawOS files that the sandbox sees read-only at /dev/.clawos. As root,
// for a bundle under the state directory, dst is a hard link to the one
// copy of this clawos-init build kept in shared (sharedInit): a link
// costs a directory entry where a copy of the 0.8 MB program cost 0.3 ms
// per start. That copy belongs to host root with mode 0555, which no
// sandbox can change: in its user namespace host root is unmapped (no
// capability applies to the file) and without one the agent runs as
// nobody; the mount is read-only besides. Rootless, the sandbox's root is
// the caller, who owns such a copy, so every bundle gets a copy of its own
// as before, and so does any other bundle (--write-bundle: a bundle the
// user may edit must not hold a link to what later sandboxes run).
func installInit(src, dst, shared string) error {
	if shared != "" && os.Geteuid() == 0 {
		if name, err := sharedInit(src, shared); err == nil && os.Link(name, dst) == nil {
			return nil
		}
	}
	return copyFile(src, dst, 0o755)
}

// sharedInit is dir's copy of clawos-init src, made (atomically) when
// there is none for src's identity (device, inode, size, modification
// time: a reinstalled clawos-init is another) or it is not what this
// function makes (a regular file of root's, mode 0555, src's size); the
// copies of other builds are removed then (bundles keep their links).
func sharedInit(src, dir string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return "", err
	}
	name := filepath.Join(dir, fmt.Sprintf("clawos-init-%d-%d-%d-%d.%d", st.Dev, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec))
	var have unix.Stat_t
	if unix.Lstat(name, &have) == nil && have.Mode&unix.S_IFMT == unix.S_IFREG && have.Uid == 0 && have.Mode&0o7777 == 0o555 && have.Size == st.Size {
		return name, nil
	}
	if err := mkdirCreated(dir, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(dir, ".clawos-init.tmp-*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := copyFile(src, tmp.Name(), 0o555); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp.Name(), 0o555); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return "", err
	}
	old, _ := filepath.Glob(filepath.Join(dir, "clawos-init-*"))
	for _, o := range old {
		if o != name {
			os.Remove(o)
		}
	}
	// What a run killed while it copied left (a copy takes milliseconds).
	tmps, _ := filepath.Glob(filepath.Join(dir, ".clawos-init.tmp-*"))
	for _, t := range tmps {
		if fi, err := os.Stat(t); err == nil && time.Since(fi.ModTime()) > 10*time.Minute {
			os.Remove(t)
		}
	}
	return name, nil
}

// mkdirCreated creates dir and the missing directories above it with mode
// (whatever the umask), and leaves every directory that already exists as
// it is: a sticky, world-writable parent such as /tmp keeps its mode.
func mkdirCreated(dir string, mode os.FileMode) error {
	dir = filepath.Clean(dir)
	if _, err := os.Lstat(dir); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirCreated(parent, mode); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, mode); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // made meanwhile by another run
		}
		return err
	}
	return os.Chmod(dir, mode)
}
