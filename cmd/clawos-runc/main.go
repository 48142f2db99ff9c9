// Command clawos-runc is the ClawOS runtime wrapper for containerd (also as
// a Kubernetes CRI runtime handler) and plain runc: called with runc's
// command line, it confines the bundle of an annotated container on create
// (and run), routes exec'd processes of a confined container through
// clawos-init, then execs the real runc; every other command passes
// straight through. Its
// configuration is /etc/clawos/runtime.json, or clawos-runc.json next to
// the path it was called by. See docs/hooks.md.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/hook"
)

func main() {
	os.Exit(run(os.Args, os.Stderr))
}

func run(argv []string, stderr io.Writer) int {
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.WarnLevel)
	cfg, err := config(argv[0])
	if err != nil {
		return fail(stderr, "", err)
	}
	cwd, err := os.Getwd()
	if err != nil {
		return fail(stderr, "", clawerr.Wrap(clawerr.EIO, err, "working directory"))
	}
	rc := hook.ParseRuncCommand(argv[1:], cwd)
	args := argv[1:]
	var out *hook.Outcome
	if rc.Command == "exec" {
		args, out, err = hook.WrapExec(rc, args)
	} else {
		out, err = hook.WrapCreate(rc, cfg, log)
	}
	if out != nil || err != nil {
		if aerr := hook.Append(cfg.AuditLog, hook.NewRecord(rc.Command, rc.ID, out, err)); aerr != nil && err == nil {
			err = aerr
		}
	}
	if err != nil {
		return fail(stderr, rc.Log, err)
	}
	err = syscall.Exec(cfg.Runc, append([]string{"runc"}, args...), os.Environ())
	return fail(stderr, rc.Log, &clawerr.Error{Code: clawerr.ENoEnt, Path: "runc", Message: "cannot run the OCI runtime " + cfg.Runc, Err: err})
}

// config reads clawos-runc.json next to the path the wrapper was called by
// (a test or a second installation), else /etc/clawos/runtime.json; either
// may be absent (defaults).
func config(argv0 string) (hook.Config, error) {
	self, err := os.Executable()
	if err != nil {
		return hook.Config{}, clawerr.Wrap(clawerr.EInternal, err, "locate clawos-runc")
	}
	path := hook.DefaultConfigFile
	if filepath.IsAbs(argv0) {
		if p := filepath.Join(filepath.Dir(argv0), "clawos-runc.json"); exists(p) {
			path = p
		}
		self = argv0
	}
	cfg, err := hook.ReadConfig(path, true)
	if err != nil {
		return cfg, err
	}
	cfg = cfg.WithDefaults(self)
	return cfg, cfg.Check()
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// fail reports a refusal where containerd finds it (runc's --log) and on
// stderr as a P1.7 payload.
func fail(stderr io.Writer, logFile string, err error) int {
	hook.LogRefusal(logFile, err)
	b, _ := json.Marshal(clawerr.PayloadOf("clawos-runc", err))
	fmt.Fprintf(stderr, "%s\n", b)
	return 1
}
