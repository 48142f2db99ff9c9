// Package atomicfile writes files so that a reader sees the old content or
// the new, never a part: a temporary file beside the destination, then
// renamed over it. WriteFile syncs the file before the rename, for files
// that must survive a crash of the machine; WriteState does not, for the
// run-time state of a process that no reboot keeps.
package atomicfile

import (
	"os"
	"path/filepath"

	clawerr "github.com/clawos/clawos-security/errors"
)

// WriteFile writes data to path atomically with the given permissions,
// synced to its device before it replaces path.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, true)
}

// WriteState writes data to path atomically with the given permissions,
// without syncing it: for a running sandbox's records under a state
// directory (/run), which a reboot leaves meaningless whether they reached
// the disk or not, as libcontainer writes its state.json. Other processes
// see the new content at the rename all the same. A sync costs a journal
// commit where /run is not a tmpfs (0.8 ms per start measured on such a
// machine).
func WriteState(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, sync bool) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write "+path)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil && sync {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return clawerr.Wrap(clawerr.EIO, err, "write "+path)
	}
	return nil
}
