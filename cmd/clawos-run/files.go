package main

import (
	"io"
	"os"

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
