package sandbox

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"

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
