// Package atomicfile writes files so that a reader sees the old content or
// the new, never a part: a temporary file beside the destination, synced,
// then renamed over it.
package atomicfile

import (
	"os"
	"path/filepath"

	clawerr "github.com/clawos/clawos-security/errors"
)

// WriteFile writes data to path atomically with the given permissions.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write "+path)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
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
