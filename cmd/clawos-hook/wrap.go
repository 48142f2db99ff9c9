package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/internal/cgwarm"
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
	switch rc.Name {
	case "create", "run", "exec":
		// runc moves the container's (or the exec's) first process into
		// its cgroups: the kernel's wait for the first such move starts
		// now, while the config is confined (package cgwarm).
		cgwarm.Start()
	}
	cfg, err := wrapperConfig(wrapper)
	if err != nil {
		return runcargs.Fail(stderr, rc.Log, err)
	}
	var out *hook.Outcome
	var stdin []byte
	var finish func(made bool) (*hook.Outcome, error)
	switch {
	case rc.Name == "exec" && len(rc.Unknown) == 0:
		args, out, err = hook.WrapExec(rc, args)
	case rc.Name == "update" && len(rc.Unknown) == 0:
		args, stdin, out, err = hook.WrapUpdate(rc, args, os.Stdin)
	default:
		out, finish, err = hook.WrapCreate(rc, cfg, log)
	}
	if err != nil {
		if aerr := hook.Append(cfg.AuditLog, hook.NewRecord(rc.Name, rc.ID, out, err)); aerr != nil {
			log.WithError(aerr).Error("audit")
		}
		return runcargs.Fail(stderr, rc.Log, err)
	}
	if stdin != nil {
		// runc reads the clamped document on its stdin: a memfd holds it
		// whatever its size.
		if err := replaceStdin(stdin); err != nil {
			return runcargs.Fail(stderr, rc.Log, err)
		}
	}
	if out != nil {
		// A call we confined: run runc as a child, and record the outcome
		// once runc has returned (a create or exec that runc's init failed
		// is recorded as failed, never as applied).
		status, rerr := runRunc(cfg.Runc, args)
		made := rerr == nil && status == 0
		rec := hook.NewRecord(rc.Name, rc.ID, out, nil)
		switch {
		case rerr != nil:
			rec.Decision, rec.Code, rec.Reason = hook.DecisionFailed, clawerr.CodeOf(rerr).String(), rerr.Error()
			status = runcargs.Fail(stderr, rc.Log, rerr)
		case status != 0:
			rec.Decision, rec.Reason = hook.DecisionFailed, fmt.Sprintf("runc %s exited with status %d", rc.Name, status)
		}
		if aerr := hook.Append(cfg.AuditLog, rec); aerr != nil {
			log.WithError(aerr).Error("audit: the call's outcome could not be recorded")
			if status == 0 {
				status = 1
			}
		}
		switch {
		case finish != nil && made && status == 0:
			status = finishCreate(rc, cfg, finish, stderr, log)
		case finish != nil && made:
			// Created, but its create could not be recorded: refused,
			// and no container left to start.
			deleteCreated(rc, cfg, log)
			abandonCreate(finish, log)
		case finish != nil:
			abandonCreate(finish, log)
		}
		return status
	}
	err = syscall.Exec(cfg.Runc, append([]string{"runc"}, args...), os.Environ())
	return runcargs.Fail(stderr, rc.Log, &clawerr.Error{Code: clawerr.ENoEnt, Path: "runc", Message: "cannot run the OCI runtime " + cfg.Runc, Err: err})
}

// finishCreate does the createRuntime stage's work for a create runc has
// just done (the container created, its process not started), records it
// as that stage, and on failure, an unrecorded one included, deletes the
// container and refuses the create.
func finishCreate(rc runcargs.Command, cfg hook.Config, finish func(made bool) (*hook.Outcome, error), stderr io.Writer, log logrus.FieldLogger) int {
	out, err := finish(true)
	if aerr := hook.Append(cfg.AuditLog, hook.NewRecord("createRuntime", rc.ID, out, err)); aerr != nil && err == nil {
		err = aerr // an unaudited start is refused
	}
	if err == nil {
		return 0
	}
	deleteCreated(rc, cfg, log)
	return runcargs.Fail(stderr, rc.Log, err)
}

// abandonCreate removes what the wrapper installed for a container that
// runc did not create, or that was deleted since (finish without made).
func abandonCreate(finish func(made bool) (*hook.Outcome, error), log logrus.FieldLogger) {
	if _, err := finish(false); err != nil {
		log.WithError(err).Error("the port rules of a container that was not created could not be removed")
	}
}

// deleteCreated deletes a container the wrapper had runc create and then
// refused, with the call's global flags (the same state).
func deleteCreated(rc runcargs.Command, cfg hook.Config, log logrus.FieldLogger) {
	del := exec.Command(cfg.Runc, append(append([]string{}, rc.Globals...), "delete", "--force", rc.ID)...)
	if out, err := del.CombinedOutput(); err != nil {
		log.WithError(err).WithField("output", strings.TrimSpace(string(out))).Error("the refused container could not be deleted")
	}
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

// inherited are the descriptors clawos-hook runc-wrap was started with,
// which runc must get as they are (--preserve-fds, the shim's pipes).
var inherited []int

// inheritedFDs lists this process's open descriptors.
func inheritedFDs() []int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return []int{0, 1, 2}
	}
	var fds []int
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds
}

// runRunc runs runc with args as a child that gets every inherited
// descriptor at its number and this process's signals, dies with it
// (parent-death signal), and returns its exit status (128+N for signal N).
func runRunc(bin string, args []string) (int, error) {
	maxFD := 2
	open := map[int]bool{}
	for _, fd := range inherited {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			continue // the directory listing's own descriptor, now closed
		}
		open[fd] = true
		maxFD = max(maxFD, fd)
	}
	files := make([]uintptr, maxFD+1)
	for i := range files {
		files[i] = ^uintptr(0) // closed in the child
		if open[i] {
			files[i] = uintptr(i)
		}
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH)
	defer signal.Stop(sigs)
	pid, err := syscall.ForkExec(bin, append([]string{"runc"}, args...), &syscall.ProcAttr{Env: os.Environ(), Files: files,
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}})
	if err != nil {
		return 0, &clawerr.Error{Code: clawerr.ENoEnt, Path: "runc", Message: "cannot run the OCI runtime " + bin, Err: err}
	}
	go func() {
		for s := range sigs {
			unix.Kill(pid, s.(syscall.Signal))
		}
	}()
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, clawerr.Wrap(clawerr.EInternal, err, "wait for runc")
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}
