package main

import (
	"io"
	"os"
	"path/filepath"
	"sort"

	clawerr "github.com/clawos/clawos-security/errors"
)

// writeFileAtomic writes data to a temporary file beside path and renames it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
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

func sortedKeysOf(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
