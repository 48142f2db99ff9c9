package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/namespaces"
)

// Config is what the user asks of a sandbox: clawos-run's flags, one field
// each. Its zero value is not runnable (no whitelist, no command);
// WithDefaults fills what clawos-run's flags default to, and Validate
// refuses what does not go together.
type Config struct {
	// Whitelist is the P1.2 whitelist's path, "-" to read it from Stdin.
	// Required unless Learn is set: an agent never runs unconfined.
	Whitelist string
	// Command is the agent's command line, resolved in the sandbox's own
	// view (a bare name in its PATH). It may be empty with Bundle, whose
	// process.args it then is.
	Command []string
	// Runtime is "embedded" (runc's libcontainer in this process), "runc",
	// or the path of a runc-compatible program.
	Runtime string
	// Rootfs is a root filesystem directory; empty for a read-only view of
	// the host's system directories.
	Rootfs string
	// Bundle is an existing OCI bundle whose root, mounts and process are
	// kept; confinement applies to a copy of its config.
	Bundle string
	// Workdir is a host directory made visible read-only at its path and
	// the working directory (clawos-run's --workdir); Chdir is the agent's
	// directory inside the sandbox's view, nothing bound for it.
	Workdir, Chdir string
	// Workspace is a host directory bound writable at its path and made
	// the working directory, its git directory kept read-only.
	Workspace string
	// ROBinds and Binds are SRC[:DST] binds, read-only and writable; Tmpfs
	// are destinations of private tmpfs mounts.
	ROBinds, Binds, Tmpfs []string
	// Env are K=V entries of the agent's environment, on top of PATH and
	// HOME; nothing else of the caller's reaches the agent (see ResolveEnv).
	Env []string
	// Baseline: measured calls added to the whitelist (start, tokio,
	// start,tokio or none).
	Baseline string
	// Net is none, loopback, pasta or host (namespaces.Net).
	Net string
	// AppArmor and Landlock are auto, required or off; AppArmorPreset a
	// P1.6 preset layered on the generated profile.
	AppArmor, AppArmorPreset, Landlock string
	// TTY gives the agent a terminal; NoUserNS runs it without a user
	// namespace (as nobody, root only).
	TTY, NoUserNS bool
	// Init keeps clawos-init as pid 1, a reaper forwarding signals.
	Init bool
	// Slice is a P1.5 slice whose quotas apply.
	Slice, Hostname string
	// StateDir holds bundles and runtime state (DefaultStateDir).
	StateDir string
	// ID is the container id; empty for a generated one.
	ID string
	// KillAfter bounds the wait for the agent after a forwarded signal.
	KillAfter time.Duration
	// BundleOnly: the plan is for a bundle written to BundleDir for another
	// runtime to run (clawos-run --write-bundle): no launcher pipe.
	BundleOnly bool
	BundleDir  string
	// MeasureRuntime: the container-level filter logs instead of killing.
	MeasureRuntime   bool
	RequireSignature bool
	// Learn is where a learn run writes the whitelist it records (no
	// Whitelist then); Merge a whitelist it is merged with; LearnFailed and
	// Force write it after a failed run and over an existing file.
	Learn, Merge       string
	LearnFailed, Force bool
	// Complain logs what Whitelist would refuse, and writes it to Report.
	Complain bool
	Report   string
	// PlanCache is the plan cache's directory: "" for the host's
	// (Host.PlanCache), "off" for none.
	PlanCache string
}

// Defaults of the fields WithDefaults fills.
const (
	DefaultRuntime   = "embedded"
	DefaultBaseline  = "start"
	DefaultKillAfter = 10 * time.Second
	DefaultReport    = "clawos-complain.json"
)

// DefaultStateDir is where the sandboxes of a caller with effective uid
// euid live: /run/clawos for root, $XDG_RUNTIME_DIR/clawos (or
// /tmp/clawos-UID) for another user.
func DefaultStateDir(euid int) string {
	if euid == 0 {
		return "/run/clawos"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "clawos")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("clawos-%d", euid))
}

// WithDefaults returns c with every empty field that has a default set to
// it.
func (c Config) WithDefaults() Config {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Runtime, DefaultRuntime)
	def(&c.Baseline, DefaultBaseline)
	def(&c.Net, string(namespaces.NetLoopback))
	def(&c.AppArmor, confine.AppArmorAuto)
	def(&c.Landlock, confine.LandlockAuto)
	def(&c.StateDir, DefaultStateDir(os.Geteuid()))
	def(&c.Report, DefaultReport)
	if c.KillAfter == 0 {
		c.KillAfter = DefaultKillAfter
	}
	return c
}

// UsageError is a request that does not go together: clawos-run exits
// with its usage status for it.
type UsageError struct{ Err error }

func (u *UsageError) Error() string { return u.Err.Error() }
func (u *UsageError) Unwrap() error { return u.Err }

func usage(format string, a ...any) error { return &UsageError{fmt.Errorf(format, a...)} }

// Validate refuses what does not go together, naming the flags.
func (c *Config) Validate() error {
	switch {
	case c.Learn != "" && (c.Whitelist != "" || c.Complain):
		return usage("--learn records a new whitelist: not with --whitelist or --complain (use --merge to add to one)")
	case c.Merge != "" && c.Learn == "":
		return usage("--merge goes with --learn")
	case c.Init && (c.Learn != "" || c.Complain):
		return usage("--init does not go with --learn or --complain: their supervisor takes the filter's listener from the sandbox's pid 1")
	case (c.LearnFailed || c.Force) && c.Learn == "":
		return usage("--learn-failed and --force go with --learn")
	case c.Learn == "" && c.Whitelist == "":
		return usage("--whitelist is required: an agent never runs unconfined (or --learn OUT.json to record one)")
	case len(c.Command) == 0 && c.Bundle == "":
		return usage("no command: want -- CMD [ARGS...]")
	case c.Workspace != "" && (c.Workdir != "" || c.Rootfs != "" || c.Bundle != ""):
		return usage("--workspace excludes --workdir, --rootfs and --bundle")
	case c.Chdir != "" && (c.Workdir != "" || !filepath.IsAbs(c.Chdir)):
		return usage("--chdir takes an absolute path inside the sandbox, and excludes --workdir")
	case c.Bundle != "" && c.Rootfs != "":
		return usage("--bundle and --rootfs exclude each other: the bundle has its root")
	}
	if _, err := c.netMode(); err != nil {
		return err
	}
	switch c.AppArmor {
	case confine.AppArmorAuto, confine.AppArmorRequired, confine.AppArmorOff:
	default:
		return usage("--apparmor %q: want auto, required or off", c.AppArmor)
	}
	if c.Learn != "" && c.Merge != c.Learn && !c.Force {
		if _, err := os.Stat(c.Learn); err == nil {
			return usage("--learn %s: the file exists; pass --merge %s to add this run to it, or --force to replace it", c.Learn, c.Learn)
		}
	}
	return nil
}

func (c *Config) netMode() (namespaces.Net, error) {
	for _, n := range namespaces.KnownNets() {
		if string(n) == c.Net {
			return n, nil
		}
	}
	return "", usage("--net %q: want none, loopback, pasta or host", c.Net)
}

// ResolveEnv is the agent's environment from --env entries and an
// --env-file: K=V as given, K alone the caller's value from lookup
// (refused when the caller has none).
func ResolveEnv(entries []string, file string, lookup func(string) (string, bool)) ([]string, error) {
	entries = append([]string{}, entries...)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				entries = append(entries, line)
			}
		}
	}
	var out []string
	for _, e := range entries {
		k, _, hasVal := strings.Cut(e, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env %q: want K=V or K", e)
		}
		if !hasVal {
			v, ok := lookup(k)
			if !ok {
				return nil, fmt.Errorf("--env %s: %s is not set in clawos-run's environment", k, k)
			}
			e = k + "=" + v
		}
		out = append(out, e)
	}
	return out, nil
}

// errNoCommand is the plan's refusal of a sandbox without a command (a
// bundle without process.args).
var errNoCommand = errors.New("no command: want -- CMD [ARGS...]")
