// Package runcargs is what the runtime wrapper (clawos-runc) decides before
// anything heavy is loaded: runc's command line, and whether a container
// asks for ClawOS (its annotations) or was confined by it (runc's state
// and the bundle's config). It imports nothing beyond the standard library,
// x/sys and runtime-spec's types, so that the wrapper's pass-through of
// every other runc call (start, state, kill, delete, and the pod sandbox's
// create) costs a small static binary's start and no more. The
// confinement itself is the hook package's.
package runcargs

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/annotations"
)

// Annotations a container's creator sets to ask for confinement.
const (
	// AnnotationWhitelist names a whitelist in the operator's trusted
	// directory: NAME reads WhitelistDir/NAME.json.
	AnnotationWhitelist = annotations.Whitelist
	// AnnotationSlice names a P1.5 slice (memory, cpu, pids quotas).
	AnnotationSlice = annotations.Slice
	// AnnotationBaseline lists the baselines to add (start, tokio, none;
	// comma separated); "start" when absent, as in clawos-run.
	AnnotationBaseline = annotations.Baseline
	// AnnotationAgentDigest marks a config ClawOS confined: the digest of
	// the agent's filter, which clawos-init loads.
	AnnotationAgentDigest = annotations.AgentDigest
)

// Annotations containerd's CRI plugin sets on every container's config
// (after the pod annotations it passes through, so a pod cannot set them).
const (
	AnnotationCRIContainerType = "io.kubernetes.cri.container-type"
	AnnotationCRIContainerName = "io.kubernetes.cri.container-name"
	// CRISandbox is the container type of a pod's sandbox (pause)
	// container.
	CRISandbox = "sandbox"
)

// Per-container forms of the annotations, for pods of several containers
// (Kubernetes passes annotations per pod, not per container): the pod
// annotation PREFIX+NAME applies to the container named NAME and overrides
// the pod-wide io.clawos.* annotation for it. A prefixed key leaves the
// container name its full 63 characters.
const (
	ContainerWhitelistPrefix = annotations.ContainerWhitelistPrefix
	ContainerSlicePrefix     = annotations.ContainerSlicePrefix
	ContainerBaselinePrefix  = annotations.ContainerBaselinePrefix
)

// Request is what a container's annotations ask of ClawOS. Each value
// comes with the annotation key it was read from, for messages.
type Request struct {
	Whitelist, WhitelistKey string
	Slice, SliceKey         string
	Baseline, BaselineKey   string
	// Sandbox: the config carries containerd's pod-sandbox marker
	// (io.kubernetes.cri.container-type=sandbox). Only an entry point the
	// operator configured as a CRI runtime honours it (hook.Config.CRI),
	// passing the pause container through although the pod's annotations
	// reach its config too; anywhere else the marker next to a whitelist
	// is refused, since whoever creates the container can set it.
	Sandbox bool
	// Named: the whitelist annotation is there, even if empty (an empty
	// name is refused: it must not mean "unconfined").
	Named bool
}

// Requested reads a container's annotations: the per-container form for
// its CRI container name first, then the io.clawos.* form.
func Requested(ann map[string]string) Request {
	name := ann[AnnotationCRIContainerName]
	pick := func(key, prefix string) (string, string) {
		if name != "" {
			if v, ok := ann[prefix+name]; ok {
				return v, prefix + name
			}
		}
		return ann[key], key
	}
	var r Request
	r.Whitelist, r.WhitelistKey = pick(AnnotationWhitelist, ContainerWhitelistPrefix)
	r.Slice, r.SliceKey = pick(AnnotationSlice, ContainerSlicePrefix)
	r.Baseline, r.BaselineKey = pick(AnnotationBaseline, ContainerBaselinePrefix)
	_, r.Named = ann[r.WhitelistKey]
	r.Sandbox = ann[AnnotationCRIContainerType] == CRISandbox
	return r
}

// Command is what the runtime wrapper needs from runc's command line.
type Command struct {
	Name    string // create, start, delete, exec, ...
	Bundle  string // create and run: --bundle, or the working directory
	Log     string // --log: where runc (and a refusal of ours) writes JSON log lines
	ID      string // the container id
	Root    string // --root: runc's state directory
	Process string // exec: --process, the process.json file
	// PidFile is create's --pid-file (absolute), where runc writes the
	// container's init pid.
	PidFile string
	// Globals are the arguments before the command (runc's global flags),
	// for another runc call on the same state (a delete).
	Globals []string
	// IDIndex is the position of ID in the arguments; for exec without
	// --process, the command follows it.
	IDIndex int
	// Widening lists the exec flags that would give the process more than
	// the container's confinement (--cap, --apparmor, --process-label).
	Widening []string
	// Resources is update's --resources (a file, or "-" for stdin), and
	// Limits the update flags that set a limit directly, by name.
	Resources string
	Limits    map[string]string
	// Unknown lists what runc would read but this parser does not know: a
	// flag outside runc's tables, an unknown command. Such a call is never
	// passed through (see Concerns).
	Unknown []string
}

// runcFlags are runc 1.1's flags, global ("") and per command, as its
// urfave/cli definitions declare them: true for a flag that takes a value.
// Each is accepted with one dash or two, its value after "=" or as the next
// argument, as runc's parser does. TestFlagTable checks the table against
// the installed runc's own --help. A flag missing here is not guessed at:
// the call goes to the full wrapper, which refuses it.
var runcFlags = map[string]map[string]bool{
	"": {"debug": false, "log": true, "log-format": true, "root": true, "criu": true, "systemd-cgroup": false,
		"rootless": true, "help": false, "h": false, "version": false, "v": false},
	"checkpoint": {"image-path": true, "work-path": true, "parent-path": true, "leave-running": false, "tcp-established": false,
		"ext-unix-sk": false, "shell-job": false, "lazy-pages": false, "status-fd": true, "page-server": true, "file-locks": false,
		"pre-dump": false, "manage-cgroups-mode": true, "empty-ns": true, "auto-dedup": false},
	"create": {"bundle": true, "b": true, "console-socket": true, "pid-file": true, "no-pivot": false, "no-new-keyring": false,
		"preserve-fds": true},
	"delete": {"force": false, "f": false},
	"events": {"interval": true, "stats": false},
	"exec": {"console-socket": true, "cwd": true, "env": true, "e": true, "tty": false, "t": false, "user": true, "u": true,
		"additional-gids": true, "g": true, "process": true, "p": true, "detach": false, "d": false, "pid-file": true,
		"process-label": true, "apparmor": true, "no-new-privs": false, "cap": true, "c": true, "preserve-fds": true,
		"cgroup": true, "ignore-paused": false},
	"init":  {},
	"kill":  {"all": false, "a": false},
	"list":  {"format": true, "f": true, "quiet": false, "q": false},
	"pause": {},
	"ps":    {"format": true, "f": true},
	"restore": {"console-socket": true, "image-path": true, "work-path": true, "tcp-established": false, "ext-unix-sk": false,
		"shell-job": false, "file-locks": false, "manage-cgroups-mode": true, "bundle": true, "b": true, "detach": false, "d": false,
		"pid-file": true, "no-subreaper": false, "no-pivot": false, "empty-ns": true, "auto-dedup": false, "lazy-pages": false,
		"lsm-profile": true, "lsm-mount-context": true},
	"resume": {},
	"run": {"bundle": true, "b": true, "console-socket": true, "detach": false, "d": false, "keep": false, "pid-file": true,
		"no-subreaper": false, "no-pivot": false, "no-new-keyring": false, "preserve-fds": true},
	"spec":  {"bundle": true, "b": true, "rootless": false},
	"start": {},
	"state": {},
	"update": {"resources": true, "r": true, "blkio-weight": true, "cpu-period": true, "cpu-quota": true, "cpu-share": true,
		"cpu-rt-period": true, "cpu-rt-runtime": true, "cpuset-cpus": true, "cpuset-mems": true, "memory": true,
		"memory-reservation": true, "memory-swap": true, "pids-limit": true, "l3-cache-schema": true, "mem-bw-schema": true},
	"features": {},
}

// RuncFlags returns runc's flags for command ("" for the global ones):
// name -> takes a value. For tests.
func RuncFlags(command string) (map[string]bool, bool) {
	f, ok := runcFlags[command]
	return f, ok
}

// DefaultRoot is runc's state directory when --root is not given (root's).
const DefaultRoot = "/run/runc"

// Parse reads runc's command line (without the program name) as runc does:
// global flags before the command, the command's own flags anywhere before
// "--" (runc's parser moves them ahead of the arguments), except for exec,
// whose command follows the container id. cwd is the working directory,
// runc's default bundle. What it cannot read the way runc would (a flag of
// neither table, an unknown command) is listed in Unknown.
func Parse(args []string, cwd string) Command {
	c := Command{Bundle: cwd}
	table := runcFlags[""]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if c.Name == "" {
				c.Unknown = append(c.Unknown, a)
			}
			break
		}
		if strings.HasPrefix(a, "-") && len(a) > 1 {
			name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
			takes, known := table[name]
			if !known {
				c.Unknown = append(c.Unknown, a)
				continue
			}
			if takes && !hasVal && i+1 < len(args) {
				i++
				val = args[i]
			}
			switch name {
			case "log":
				c.Log = val
			case "bundle", "b":
				c.Bundle = val
			case "root":
				if c.Name == "" {
					c.Root = val
				}
			case "process", "p":
				c.Process = val
			case "pid-file":
				if c.Name == "create" {
					c.PidFile = val
				}
			case "cap", "c", "apparmor", "process-label":
				if c.Name == "exec" {
					c.Widening = append(c.Widening, "--"+name)
				}
			case "resources", "r":
				if c.Name == "update" {
					c.Resources = val
				}
			}
			if c.Name == "update" && takes && name != "resources" && name != "r" {
				if c.Limits == nil {
					c.Limits = map[string]string{}
				}
				c.Limits[name] = val
			}
			continue
		}
		switch {
		case c.Name == "":
			c.Name = a
			if i > 0 {
				c.Globals = append([]string(nil), args[:i]...)
			}
			t, ok := runcFlags[a]
			if !ok {
				c.Unknown = append(c.Unknown, a)
				t = map[string]bool{}
			}
			table = t
		case c.ID == "":
			c.ID, c.IDIndex = a, i
			if c.Name == "exec" {
				i = len(args) // the command to run follows the id
			}
		}
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.Bundle != "" && !filepath.IsAbs(c.Bundle) {
		c.Bundle = filepath.Join(cwd, c.Bundle)
	}
	if c.Process != "" && !filepath.IsAbs(c.Process) {
		c.Process = filepath.Join(cwd, c.Process)
	}
	if c.PidFile != "" && !filepath.IsAbs(c.PidFile) {
		c.PidFile = filepath.Join(cwd, c.PidFile)
	}
	return c
}

// Concerns tells whether the wrapper has work to do for c: a create or run
// of a container whose annotations name a whitelist (a pod's sandbox
// included: the full path decides by the operator's configuration whether
// its marker is honoured), or an exec into a container ClawOS confined. Whatever it
// cannot read concerns it, so that the full wrapper reports the error:
// in doubt, never pass through.
func Concerns(c Command) bool {
	if len(c.Unknown) > 0 {
		return true
	}
	switch c.Name {
	case "create", "run", "restore":
		ann, err := BundleAnnotations(c.Bundle)
		if err != nil {
			return true
		}
		return Requested(ann).Named
	case "exec", "update":
		bundle, err := BundleOf(c.Root, c.ID)
		if err != nil {
			return true
		}
		ann, err := BundleAnnotations(bundle)
		return err != nil || ann[AnnotationAgentDigest] != ""
	}
	return false
}

// MaxConfig bounds the OCI config, state and process documents read.
const MaxConfig = 16 << 20

// ReadConfig reads bundle/config.json, at most MaxConfig bytes, without
// following a symlink in its last component: the hook's stages, the
// wrapper and clawos-run --bundle read a bundle's config alike.
func ReadConfig(bundle string) (*specs.Spec, error) {
	b, err := ReadLimited(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, "read the bundle's config.json")
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, &clawerr.Error{Code: clawerr.EProto, Message: "the bundle's config.json is not an OCI config", Err: err}
	}
	return &s, nil
}

// BundleAnnotations reads the annotations of bundle/config.json.
func BundleAnnotations(bundle string) (map[string]string, error) {
	b, err := ReadLimited(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("the bundle's config.json is not an OCI config: %w", err)
	}
	return s.Annotations, nil
}

// ValidID tells whether id can name a file of ours: [A-Za-z0-9] then up to
// 255 of [A-Za-z0-9_.-] (runc's own rule is looser). No regexp: compiling
// one would cost every wrapper call.
func ValidID(id string) bool {
	if id == "" || len(id) > 256 {
		return false
	}
	for i, c := range []byte(id) {
		alnum := c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// BundleOf finds a container's bundle in runc's state (ROOT/ID/state.json,
// whose config's labels carry "bundle=PATH").
func BundleOf(root, id string) (string, error) {
	if !ValidID(id) {
		return "", fmt.Errorf("%q is not a container id", id)
	}
	b, err := ReadLimited(filepath.Join(root, id, "state.json"))
	if err != nil {
		return "", fmt.Errorf("read runc's state of container %s: %w", id, err)
	}
	var st struct {
		Config struct {
			Labels []string `json:"labels"`
		} `json:"config"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return "", fmt.Errorf("runc's state of container %s is not JSON: %w", id, err)
	}
	for _, l := range st.Config.Labels {
		if v, ok := strings.CutPrefix(l, "bundle="); ok && filepath.IsAbs(v) {
			return v, nil
		}
	}
	return "", fmt.Errorf("runc's state of container %s names no bundle", id)
}

// ReadLimited reads a file of at most MaxConfig bytes without following a
// symlink in its last component.
func ReadLimited(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxConfig))
}

// Configuration files of the runtime wrapper.
const (
	// DefaultConfigFile is the node's configuration.
	DefaultConfigFile = "/etc/clawos/runtime.json"
	// LocalConfigName, next to the path the wrapper was called by, wins
	// (a test, or a second installation).
	LocalConfigName = "clawos-runc.json"
	// DefaultRunc is the real OCI runtime.
	DefaultRunc = "/usr/bin/runc"
)

// ConfigPath is the configuration file of a wrapper called as argv0.
func ConfigPath(argv0 string) string {
	if filepath.IsAbs(argv0) {
		p := filepath.Join(filepath.Dir(argv0), LocalConfigName)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return DefaultConfigFile
}

// Programs are the two programs the wrapper execs, from its configuration
// file (the other fields are the hook package's).
type Programs struct {
	Runc string `json:"runc"`
	Hook string `json:"hook"`
}

// ReadPrograms reads them from path (absent: defaults), defaulting Hook to
// clawos-hook in dir.
func ReadPrograms(path, dir string) (Programs, error) {
	var p Programs
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return p, err
	}
	if err == nil {
		if err := json.Unmarshal(b, &p); err != nil {
			return p, fmt.Errorf("%s: %w", path, err)
		}
	}
	if p.Runc == "" {
		p.Runc = DefaultRunc
	}
	if p.Hook == "" {
		p.Hook = filepath.Join(dir, "clawos-hook")
	}
	return p, nil
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

// Fail reports a refusal of the runtime wrapper where containerd finds it
// (runc's --log, see LogRefusal) and on stderr as a P1.7 payload; it
// returns the exit status, 1.
func Fail(stderr io.Writer, logFile string, err error) int {
	LogRefusal(logFile, err)
	b, _ := json.Marshal(clawerr.PayloadOf("clawos-runc", err))
	fmt.Fprintf(stderr, "%s\n", b)
	return 1
}

// SetValue returns args with the value of the command flag known by any of
// names (without dashes, in any form Parse reads) replaced by value, as
// "--NAME=value".
func SetValue(args []string, names []string, value string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		matched := false
		for _, n := range names {
			matched = matched || (strings.HasPrefix(a, "-") && name == n)
		}
		if !matched {
			out = append(out, a)
			continue
		}
		out = append(out, "--"+names[0]+"="+value)
		if !hasVal {
			i++ // the value was the next argument
		}
	}
	return out
}
