package hook

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/translate"
)

// RuncCommand is what the runtime wrapper needs from runc's command line.
type RuncCommand struct {
	Command string // create, start, delete, exec, ...
	Bundle  string // create and run: --bundle, or the working directory
	Log     string // --log: where runc (and a refusal of ours) writes JSON log lines
	ID      string // the container id
	Root    string // --root: runc's state directory
	Process string // exec: --process, the process.json file
	// IDIndex is the position of ID in the arguments; for exec without
	// --process, the command follows it.
	IDIndex int
	// Widening lists the exec flags that would give the process more than
	// the container's confinement (--cap, --apparmor, --process-label).
	Widening []string
}

// runc's flags that take a value, global and per command.
var runcValueFlags = map[string]bool{
	"--log": true, "--log-format": true, "--root": true, "--criu": true, "--rootless": true,
	"--bundle": true, "-b": true, "--console-socket": true, "--pid-file": true, "--preserve-fds": true,
	"--process": true, "-p": true, "--cwd": true, "--env": true, "-e": true, "--user": true, "-u": true,
	"--additional-gids": true, "-g": true, "--process-label": true, "--apparmor": true, "--cap": true, "-c": true,
	"--signal": true, "-s": true, "--format": true, "-f": true,
}

// ParseRuncCommand reads runc's command line (without the program name).
// cwd is the working directory, runc's default bundle.
func ParseRuncCommand(args []string, cwd string) RuncCommand {
	rc := RuncCommand{Bundle: cwd}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if strings.HasPrefix(a, "-") {
			if !hasVal && runcValueFlags[name] && i+1 < len(args) {
				i++
				val = args[i]
			}
			switch name {
			case "--log":
				rc.Log = val
			case "--bundle", "-b":
				rc.Bundle = val
			case "--root":
				rc.Root = val
			case "--process", "-p":
				rc.Process = val
			case "--cap", "-c", "--apparmor", "--process-label":
				rc.Widening = append(rc.Widening, name)
			}
			continue
		}
		if rc.Command == "" {
			rc.Command = a
		} else if rc.ID == "" {
			rc.ID, rc.IDIndex = a, i
			if rc.Command == "exec" {
				break // the command to run follows the id
			}
		}
	}
	if rc.Root == "" {
		rc.Root = "/run/runc"
	}
	if rc.Process != "" && !filepath.IsAbs(rc.Process) {
		rc.Process = filepath.Join(cwd, rc.Process)
	}
	if rc.Bundle != "" && !filepath.IsAbs(rc.Bundle) {
		rc.Bundle = filepath.Join(cwd, rc.Bundle)
	}
	return rc
}

// WrapCreate applies the whitelist a bundle's config asks for, for runc's
// create and run; other commands pass untouched (nil outcome). The config
// is replaced atomically, and only when the container is annotated.
func WrapCreate(rc RuncCommand, cfg Config, log logrus.FieldLogger) (*Outcome, error) {
	if rc.Command != "create" && rc.Command != "run" {
		return nil, nil
	}
	spec, err := ReadBundleConfig(rc.Bundle)
	if err != nil {
		return nil, err
	}
	out, err := Apply(spec, cfg, log)
	if out == nil || err != nil {
		return out, err
	}
	b, err := translate.MarshalSpec(spec)
	if err != nil {
		return out, err
	}
	return out, atomicfile.WriteFile(filepath.Join(rc.Bundle, "config.json"), b, 0o644)
}

// LogRefusal appends the reason of a refusal to runc's --log file in runc's
// JSON log format, where containerd reads the error it reports ("OCI
// runtime create failed: ...").
func LogRefusal(path string, err error) {
	if path == "" {
		return
	}
	line, _ := json.Marshal(map[string]string{"level": "error", "msg": "clawos: " + err.Error(),
		"time": time.Now().UTC().Format(time.RFC3339Nano), "code": clawerr.CodeOf(err).String()})
	f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}

// WrapExec makes a process that runc exec starts in a container we
// confined go through clawos-init with the container's agent filter, as
// its main process does: runc starts exec processes without our init, under
// the container-level filter only. With --process (what containerd's shim
// passes for crictl and kubectl exec) the process file is rewritten
// atomically: clawos-init prefixed to its args, no_new_privs on, the
// container's capabilities and AppArmor profile; without it the returned
// arguments carry the prefix. Flags that would widen the process
// (--cap, --apparmor, --process-label) are refused. A container we did not
// confine passes untouched (nil outcome).
func WrapExec(rc RuncCommand, args []string) ([]string, *Outcome, error) {
	if rc.Command != "exec" {
		return args, nil, nil
	}
	bundle, err := bundleOf(rc.Root, rc.ID)
	if err != nil {
		return args, nil, err
	}
	spec, err := ReadBundleConfig(bundle)
	if err != nil {
		return args, nil, err
	}
	if spec.Annotations[confine.AnnotationAgentDigest] == "" {
		return args, nil, nil
	}
	out := &Outcome{Whitelist: requested(spec).whitelist, Digest: spec.Annotations[translate.AnnotationProfileDigest]}
	prefix, err := initPrefix(spec)
	if err != nil {
		return args, out, err
	}
	if len(rc.Widening) > 0 {
		return args, out, &clawerr.Error{Code: clawerr.EPerm, Path: rc.Widening[0],
			Message: "runc exec " + strings.Join(rc.Widening, ", ") + " would run the process with more than its container's confinement"}
	}
	if rc.Process == "" {
		cmd := args[rc.IDIndex+1:]
		if len(cmd) == 0 {
			return args, out, &clawerr.Error{Code: clawerr.EProto, Path: "args", Message: "runc exec without a command"}
		}
		return append(append(append([]string{}, args[:rc.IDIndex+1]...), prefix...), cmd...), out, nil
	}
	p, err := readProcess(rc.Process)
	if err != nil {
		return args, out, err
	}
	if len(p.Args) == 0 {
		return args, out, &clawerr.Error{Code: clawerr.EProto, Path: "args", Message: "the exec process has no command"}
	}
	p.Args = append(append([]string{}, prefix...), p.Args...)
	p.NoNewPrivileges = true
	p.Capabilities = spec.Process.Capabilities
	p.ApparmorProfile = spec.Process.ApparmorProfile
	b, err := json.Marshal(p)
	if err != nil {
		return args, out, clawerr.Wrap(clawerr.EInternal, err, "encode the exec process")
	}
	return args, out, atomicfile.WriteFile(rc.Process, b, 0o600)
}

// initPrefix is the clawos-init part of a confined container's command
// line, up to and including "--".
func initPrefix(spec *specs.Spec) ([]string, error) {
	if spec.Process != nil && len(spec.Process.Args) > 2 && spec.Process.Args[0] == confine.Init {
		for i, a := range spec.Process.Args {
			if a == "--" {
				return append([]string{}, spec.Process.Args[:i+1]...), nil
			}
		}
	}
	return nil, &clawerr.Error{Code: clawerr.EPerm, Path: "process.args",
		Message: "the container carries a ClawOS profile but its command does not start with clawos-init"}
}

// bundleOf finds a container's bundle in runc's state (ROOT/ID/state.json,
// whose config's labels carry "bundle=PATH").
func bundleOf(root, id string) (string, error) {
	if !containerID.MatchString(id) {
		return "", &clawerr.Error{Code: clawerr.EProto, Path: "id", Message: fmt.Sprintf("%q is not a container id", id)}
	}
	b, err := readLimited(filepath.Join(root, id, "state.json"))
	if err != nil {
		return "", clawerr.Wrap(clawerr.ENoEnt, err, "read runc's state of container "+id)
	}
	var st struct {
		Config struct {
			Labels []string `json:"labels"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", &clawerr.Error{Code: clawerr.EProto, Message: "runc's state of container " + id + " is not JSON", Err: err}
	}
	for _, l := range st.Config.Labels {
		if v, ok := strings.CutPrefix(l, "bundle="); ok && filepath.IsAbs(v) {
			return v, nil
		}
	}
	return "", &clawerr.Error{Code: clawerr.ENoEnt, Message: "runc's state of container " + id + " names no bundle"}
}

func readProcess(path string) (*specs.Process, error) {
	b, err := readLimited(path)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, "read the exec process file")
	}
	var p specs.Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, &clawerr.Error{Code: clawerr.EProto, Path: "process", Message: "the exec process file is not an OCI process", Err: err}
	}
	return &p, nil
}

// readLimited reads a file of at most maxConfig bytes without following a
// symlink in its last component.
func readLimited(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxConfig))
}
