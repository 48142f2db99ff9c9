package main

import (
	"os"
	"path/filepath"

	clawerr "github.com/clawos/clawos-security/errors"
)

// writeFileAtomic writes data to a temporary file in the destination's
// directory, syncs it and renames it over path, so that a reader sees the
// old file or the new one, never a partial one.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write "+path)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return clawerr.Wrap(clawerr.EIO, err, "write "+path)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return clawerr.Wrap(clawerr.EIO, err, "write "+path)
	}
	return nil
}
