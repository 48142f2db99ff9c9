package hook

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
)

// WrapCreate applies the whitelist a bundle's config asks for, for runc's
// create and run; other commands pass untouched (nil outcome). The config
// is replaced atomically, and only when the container is annotated. A
// command line it cannot read as runc would (an unknown flag or command)
// is refused, and so is restoring an annotated bundle from a checkpoint
// (the restored process would skip clawos-init).
//
// For a create with --pid-file (what containerd's shim runs), finish is
// not nil and the caller runs it once runc's create has returned, exactly
// once. With made (the container created), it does the createRuntime
// stage's work (created) with the plan just made, in this process, instead
// of runc running clawos-hook as a hook; if it fails, the caller deletes
// the container, whose process has not started. Without made (runc failed,
// or the container was deleted since), it removes what the wrapper
// installed for the container: the port rules that, in a pod's network
// namespace, go in while runc creates the container. Other creates and
// runc run keep the injected createRuntime hook.
func WrapCreate(rc runcargs.Command, cfg Config, log logrus.FieldLogger) (out *Outcome, finish func(made bool) (*Outcome, error), err error) {
	if len(rc.Unknown) > 0 {
		return &Outcome{}, nil, &clawerr.Error{Code: clawerr.EPerm, Path: "args",
			Message: fmt.Sprintf("runc %s: %s is not a runc %s flag or command the ClawOS wrapper knows; refused rather than passed to runc unread", rc.Name, strings.Join(rc.Unknown, " "), rc.Name),
			Hint:    "use the runc the wrapper was built against (runc 1.1), or the flag's documented form"}
	}
	if rc.Name == "restore" {
		spec, err := ReadBundleConfig(rc.Bundle)
		if err != nil {
			return &Outcome{}, nil, err
		}
		if req := runcargs.Requested(spec.Annotations); req.Named {
			return &Outcome{Whitelist: req.Whitelist}, nil, &clawerr.Error{Code: clawerr.EPerm, Path: "annotations." + req.WhitelistKey,
				Message: "runc restore of a bundle that asks for ClawOS confinement is not supported: the restored process would not start through clawos-init"}
		}
		return nil, nil, nil
	}
	if rc.Name != "create" && rc.Name != "run" {
		return nil, nil, nil
	}
	spec, err := ReadBundleConfig(rc.Bundle)
	if err != nil {
		return nil, nil, err
	}
	finishing := rc.Name == "create" && rc.PidFile != ""
	out, plan, err := apply(spec, cfg, log, !finishing, true)
	if out == nil || err != nil {
		return out, nil, err
	}
	b, err := translate.MarshalSpec(spec)
	if err != nil {
		return out, nil, err
	}
	// Not synced: the engine writes the bundle's config again before every
	// create of the container (containerd's bundles are per boot, podman
	// regenerates config.json at each init), and the wrapper applies it
	// again; a torn file after a crash fails to parse, it never runs.
	if err := atomicfile.WriteState(filepath.Join(rc.Bundle, "config.json"), b, 0o644); err != nil {
		return out, nil, err
	}
	if !finishing {
		return out, nil, nil
	}
	// A pod's network namespace exists before the container: its port
	// rules go in while runc creates the container.
	var early *earlyPorts
	joined := netnsPath(spec)
	if plan.Ports != nil && joined != "" {
		early = installEarly(joined, rc.ID, plan.Ports)
	}
	return out, func(made bool) (*Outcome, error) {
		fout := &Outcome{Whitelist: out.Whitelist, WhitelistID: out.WhitelistID, Signature: out.Signature, AppArmor: out.AppArmor, Landlock: out.Landlock}
		if !made {
			return fout, early.remove()
		}
		pid, err := readPid(rc.PidFile)
		if err != nil {
			return fout, withRemoval(err, early.remove())
		}
		st := &specs.State{Version: specs.Version, ID: rc.ID, Status: specs.StateCreated, Pid: pid, Bundle: rc.Bundle}
		return fout, created(st, spec, plan, fout, cfg, early)
	}, nil
}

// readPid reads the pid runc's create wrote to its --pid-file.
func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EIO, err, "the container's pid file")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, &clawerr.Error{Code: clawerr.EProto, Message: fmt.Sprintf("the container's pid file %s holds %q, not a pid", path, b)}
	}
	return pid, nil
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
func WrapExec(rc runcargs.Command, args []string) ([]string, *Outcome, error) {
	if rc.Name != "exec" {
		return args, nil, nil
	}
	spec, out, err := confinedContainer(rc)
	if spec == nil {
		return args, nil, err
	}
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
	p.Rlimits = capRlimits(p.Rlimits, spec.Process.Rlimits)
	b, err := json.Marshal(p)
	if err != nil {
		return args, out, clawerr.Wrap(clawerr.EInternal, err, "encode the exec process")
	}
	return args, out, atomicfile.WriteState(rc.Process, b, 0o600)
}

// confinedContainer reads the config of the container rc names (exec,
// update): nil without an error when ClawOS did not confine it, else the
// config and the outcome to record.
func confinedContainer(rc runcargs.Command) (*specs.Spec, *Outcome, error) {
	bundle, err := runcargs.BundleOf(rc.Root, rc.ID)
	if err != nil {
		return nil, nil, &clawerr.Error{Code: clawerr.ENoEnt, Path: "id", Message: "cannot find the container's bundle", Err: err}
	}
	spec, err := ReadBundleConfig(bundle)
	if err != nil {
		return nil, nil, err
	}
	if spec.Annotations[confine.AnnotationAgentDigest] == "" {
		return nil, nil, nil
	}
	return spec, &Outcome{Whitelist: runcargs.Requested(spec.Annotations).Whitelist, Digest: spec.Annotations[translate.AnnotationProfileDigest]}, nil
}

// initPrefix is the clawos-init part of a confined container's command
// line, up to and including "--".
func initPrefix(spec *specs.Spec) ([]string, error) {
	if spec.Process != nil && len(spec.Process.Args) > 2 {
		if prefix, _ := splitInit(spec.Process.Args); prefix != nil {
			return append([]string{}, prefix...), nil
		}
	}
	return nil, &clawerr.Error{Code: clawerr.EPerm, Path: "process.args",
		Message: "the container carries a ClawOS profile but its command does not start with clawos-init"}
}

func readProcess(path string) (*specs.Process, error) {
	b, err := runcargs.ReadLimited(path)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, "read the exec process file")
	}
	var p specs.Process
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, &clawerr.Error{Code: clawerr.EProto, Path: "process", Message: "the exec process file is not an OCI process", Err: err}
	}
	return &p, nil
}

// capRlimits returns the rlimits of an exec'd process: each of the
// container's (its security level's, applied at create) as the upper bound
// of what the exec asks, and the container's where the exec asks nothing,
// so that no process of a confined container has more than its main one.
func capRlimits(asked, container []specs.POSIXRlimit) []specs.POSIXRlimit {
	out := append([]specs.POSIXRlimit{}, asked...)
	for _, c := range container {
		found := false
		for i := range out {
			if out[i].Type == c.Type {
				out[i].Hard, out[i].Soft = min(out[i].Hard, c.Hard), min(out[i].Soft, c.Soft)
				found = true
			}
		}
		if !found {
			out = append(out, c)
		}
	}
	return out
}

// WrapUpdate holds runc update of a container ClawOS confined to its
// resources at create (its P1.5 slice's): containerd sends the resources
// of its own stored spec, and a kubelet resize asks for more, which would
// loosen the slice unaudited. A --resources document (a file, or "-" for
// stdin as containerd's shim passes it) is clamped (namespaces
// .ClampResources) and handed to runc on stdin: the returned args read
// "--resources=-" and stdin holds the clamped document. A limit flag that
// would loosen the slice is refused. Other containers pass untouched (nil
// outcome).
func WrapUpdate(rc runcargs.Command, args []string, stdin io.Reader) ([]string, []byte, *Outcome, error) {
	if rc.Name != "update" {
		return args, nil, nil, nil
	}
	spec, out, err := confinedContainer(rc)
	if spec == nil {
		return args, nil, nil, err
	}
	var bound *specs.LinuxResources
	if spec.Linux != nil {
		bound = spec.Linux.Resources
	}
	// Limit flags: refused where they would loosen the bound.
	flags := &specs.LinuxResources{}
	for name, v := range rc.Limits {
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil {
			continue // runc itself refuses what is not a number
		}
		switch name {
		case "memory":
			flags.Memory = &specs.LinuxMemory{Limit: &n}
		case "memory-swap":
			if flags.Memory == nil {
				flags.Memory = &specs.LinuxMemory{}
			}
			flags.Memory.Swap = &n
		case "pids-limit":
			flags.Pids = &specs.LinuxPids{Limit: &n}
		case "cpu-quota":
			if flags.CPU == nil {
				flags.CPU = &specs.LinuxCPU{}
			}
			flags.CPU.Quota = &n
		}
	}
	if _, changes := namespaces.ClampResources(flags, bound); len(changes) > 0 {
		return args, nil, out, &clawerr.Error{Code: clawerr.EPerm, Path: "args",
			Message: "runc update would loosen the container's P1.5 limits (" + strings.Join(changes, ", ") + ")"}
	}
	if rc.Resources == "" {
		return args, nil, out, nil
	}
	var raw []byte
	if rc.Resources == "-" {
		raw, err = io.ReadAll(io.LimitReader(stdin, runcargs.MaxConfig))
	} else {
		raw, err = runcargs.ReadLimited(rc.Resources)
	}
	if err != nil {
		return args, nil, out, clawerr.Wrap(clawerr.EIO, err, "read the update's resources")
	}
	var asked specs.LinuxResources
	if err := json.Unmarshal(raw, &asked); err != nil {
		return args, nil, out, &clawerr.Error{Code: clawerr.EProto, Path: "resources", Message: "the update's resources are not OCI resources", Err: err}
	}
	clamped, changes := namespaces.ClampResources(&asked, bound)
	out.Notes = changes
	b, err := json.Marshal(clamped)
	if err != nil {
		return args, nil, out, clawerr.Wrap(clawerr.EInternal, err, "encode the update's resources")
	}
	return runcargs.SetValue(args, []string{"resources", "r"}, "-"), b, out, nil
}
