package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/internal/runcargs"
)

// wrapStage is how clawos-runc hands over a runc call it must confine:
// clawos-hook runc-wrap WRAPPER_PATH RUNC_ARGS...
const wrapStage = "runc-wrap"

// wrap confines the bundle of an annotated create or run, or routes an
// exec into a confined container through clawos-init, records it in the
// audit log, then execs the real runc with the (rewritten) arguments and
// the caller's environment. A refusal goes to runc's --log, where
// containerd reads it, and to stderr as a P1.7 payload.
func wrap(args []string, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprintln(stderr, "usage: clawos-hook runc-wrap WRAPPER_PATH RUNC_ARGS...")
		return 2
	}
	wrapper, args := args[0], args[1:]
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.WarnLevel)
	cwd, err := os.Getwd()
	if err != nil {
		return runcargs.Fail(stderr, "", clawerr.Wrap(clawerr.EIO, err, "working directory"))
	}
	rc := runcargs.Parse(args, cwd)
	cfg, err := wrapperConfig(wrapper)
	if err != nil {
		return runcargs.Fail(stderr, rc.Log, err)
	}
	var out *hook.Outcome
	var stdin []byte
	switch {
	case rc.Name == "exec" && len(rc.Unknown) == 0:
		args, out, err = hook.WrapExec(rc, args)
	case rc.Name == "update" && len(rc.Unknown) == 0:
		args, stdin, out, err = hook.WrapUpdate(rc, args, os.Stdin)
	default:
		out, err = hook.WrapCreate(rc, cfg, log)
	}
	if out != nil || err != nil {
		if aerr := hook.Append(cfg.AuditLog, hook.NewRecord(rc.Name, rc.ID, out, err)); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return runcargs.Fail(stderr, rc.Log, err)
	}
	if stdin != nil {
		// runc reads the clamped document on its stdin: a memfd holds it
		// whatever its size.
		if err := replaceStdin(stdin); err != nil {
			return runcargs.Fail(stderr, rc.Log, err)
		}
	}
	err = syscall.Exec(cfg.Runc, append([]string{"runc"}, args...), os.Environ())
	return runcargs.Fail(stderr, rc.Log, &clawerr.Error{Code: clawerr.ENoEnt, Path: "runc", Message: "cannot run the OCI runtime " + cfg.Runc, Err: err})
}

// wrapperConfig is the configuration of the wrapper called as wrapper:
// runcargs.ConfigPath's file, programs looked for next to it.
func wrapperConfig(wrapper string) (hook.Config, error) {
	if !filepath.IsAbs(wrapper) {
		return hook.Config{}, &clawerr.Error{Code: clawerr.EProto, Message: fmt.Sprintf("wrapper path %q is not absolute", wrapper)}
	}
	cfg, err := hook.ReadConfig(runcargs.ConfigPath(wrapper), true)
	if err != nil {
		return cfg, err
	}
	cfg = cfg.WithDefaults(wrapper)
	return cfg, cfg.Check()
}

// replaceStdin makes fd 0 a memfd holding data, read from its start.
func replaceStdin(data []byte) error {
	fd, err := unix.MemfdCreate("clawos-update", 0)
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "memfd for the update's resources")
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, data); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write the update's resources")
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "rewind the update's resources")
	}
	if err := unix.Dup2(fd, 0); err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "stdin for runc update")
	}
	return nil
}
