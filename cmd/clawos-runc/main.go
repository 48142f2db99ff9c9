// Command clawos-runc is the ClawOS runtime wrapper for containerd (also as
// a Kubernetes CRI runtime handler) and plain runc, called with runc's
// command line. A create or run of an annotated container, or an exec into
// a container ClawOS confined, it hands to `clawos-hook runc-wrap`, which
// confines it and execs the real runc; every other call (start, state,
// kill, delete, the pod sandbox's create, unannotated containers) it execs
// runc with at once. It stays small (package runcargs only) because it
// runs for every runc call of its handler. Its configuration is
// /etc/clawos/runtime.json, or clawos-runc.json next to the path it was
// called by. See docs/kubernetes.md.
package main

import (
	"io"
	"os"
	"path/filepath"
	"syscall"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/runcargs"
)

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

func run(argv []string, stderr io.Writer) int {
	self := argv[0]
	if !filepath.IsAbs(self) {
		exe, err := os.Executable()
		if err != nil {
			return runcargs.Fail(stderr, "", clawerr.Wrap(clawerr.EInternal, err, "locate clawos-runc"))
		}
		self = exe
	}
	cwd, err := os.Getwd()
	if err != nil {
		return runcargs.Fail(stderr, "", clawerr.Wrap(clawerr.EIO, err, "working directory"))
	}
	rc := runcargs.Parse(argv[1:], cwd)
	progs, err := runcargs.ReadPrograms(runcargs.ConfigPath(self), filepath.Dir(self))
	if err != nil {
		return runcargs.Fail(stderr, rc.Log, &clawerr.Error{Code: clawerr.EProto, Message: "the runtime wrapper's configuration", Err: err})
	}
	if runcargs.Concerns(rc) {
		err = syscall.Exec(progs.Hook, append([]string{"clawos-hook", "runc-wrap", self}, argv[1:]...), os.Environ())
		return runcargs.Fail(stderr, rc.Log, &clawerr.Error{Code: clawerr.ENoEnt, Path: "hook", Message: "cannot run " + progs.Hook + "; the container was not created", Err: err})
	}
	err = syscall.Exec(progs.Runc, append([]string{"runc"}, argv[1:]...), os.Environ())
	return runcargs.Fail(stderr, rc.Log, &clawerr.Error{Code: clawerr.ENoEnt, Path: "runc", Message: "cannot run the OCI runtime " + progs.Runc, Err: err})
}
