// Package hook applies ClawOS whitelists to containers that an engine
// creates: podman's and CRI-O's precreate config filter, the edit of a
// bundle's config.json by the runtime wrapper (containerd, plain runc), the
// prestart/createRuntime check that installs the port rules in the
// container's network namespace, the poststop clean-up, and the audit log
// every stage appends to. The composition of a whitelist's confinement is
// internal/confine's, shared with clawos-run.
package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/internal/runcargs"
)

// Annotations a container's creator sets to ask for confinement (see
// runcargs, which also has the per-container forms of a Kubernetes pod).
const (
	AnnotationWhitelist = runcargs.AnnotationWhitelist
	AnnotationSlice     = runcargs.AnnotationSlice
	AnnotationBaseline  = runcargs.AnnotationBaseline
)

// Defaults of Config.
const (
	DefaultWhitelistDir = "/etc/clawos/whitelists"
	DefaultStateDir     = "/run/clawos/hook"
	DefaultAuditLog     = "/var/log/clawos/hook.jsonl"
	DefaultTimeout      = 10 * time.Second
	// DefaultConfigFile is the configuration every entry point reads: the
	// runtime wrapper, and the hooks (clawos-hook --config).
	DefaultConfigFile = runcargs.DefaultConfigFile
)

// Config is the operator's configuration of the hook and the runtime
// wrapper. The container's creator controls none of it: both read the
// operator's configuration file (runtime.json), so that one policy
// (signatures required or not, AppArmor, Landlock) holds at every entry
// point; a hook's command line (hooks.d files, written by the operator)
// may override it.
type Config struct {
	// WhitelistDir is the trusted directory whitelists are read from.
	WhitelistDir string `json:"whitelist_dir,omitempty"`
	// StateDir holds one record per confined container, from prestart to
	// poststop.
	StateDir string `json:"state_dir,omitempty"`
	// AuditLog receives one JSON line per stage.
	AuditLog string `json:"audit_log,omitempty"`
	// AppArmor is auto, required or off (see confine.AppArmorAuto).
	AppArmor string `json:"apparmor,omitempty"`
	// Landlock is auto, required or off (see confine.LandlockAuto).
	Landlock string `json:"landlock,omitempty"`
	// RequireSignature refuses unsigned whitelists.
	RequireSignature bool `json:"require_signature,omitempty"`
	// Init is clawos-init on the host, bind-mounted into containers.
	Init string `json:"init,omitempty"`
	// Hook is clawos-hook on the host, injected as the prestart and
	// poststop hooks.
	Hook string `json:"hook,omitempty"`
	// Poststop is clawos-poststop on the host, injected as the poststop
	// hook in front of clawos-hook: it does the stage without starting
	// clawos-hook where createRuntime left nothing to do but remove the
	// state record and write the audit line (quickFile). "off", or a
	// program not installed, injects clawos-hook itself.
	Poststop string `json:"poststop,omitempty"`
	// Policy is clawos-policy on the host: it validates a whitelist the
	// plan cache does not hold (clawos-hook does not link the JSON Schema
	// library).
	Policy string `json:"policy,omitempty"`
	// PlanCache is the plan cache's directory (plancache.DefaultDir), or
	// "off": validate every time.
	PlanCache string `json:"plan_cache,omitempty"`
	// Runc is the real OCI runtime the wrapper execs.
	Runc string `json:"runc,omitempty"`
	// Runtime names the runtime whose measured needs the container-level
	// filter includes ("runc"; see translate.Runtimes).
	Runtime string `json:"runtime,omitempty"`
	// CRI says that this entry point is containerd's CRI runtime handler
	// (runtime.json of a Kubernetes node): a container marked as a pod's
	// sandbox is then passed through unconfined (it runs pause; see
	// docs/kubernetes.md). The hooks never honour the marker (they take no
	// such flag), and without CRI a marked container that names a
	// whitelist is refused.
	CRI bool `json:"cri,omitempty"`
	// Timeout bounds every stage, in Go duration syntax.
	Timeout string `json:"timeout,omitempty"`

	// validate replaces clawos-policy (tests validate in-process).
	validate plancache.Validator
}

// PoststopOff is Config.Poststop when clawos-hook runs the poststop stage
// itself.
const PoststopOff = "off"

// WithDefaults fills what c leaves empty. Programs are looked for next to
// self (the running executable).
func (c Config) WithDefaults(self string) Config {
	dir := filepath.Dir(self)
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&c.WhitelistDir, DefaultWhitelistDir)
	def(&c.StateDir, DefaultStateDir)
	def(&c.AuditLog, DefaultAuditLog)
	def(&c.AppArmor, confine.AppArmorAuto)
	def(&c.Landlock, confine.LandlockAuto)
	def(&c.Init, filepath.Join(dir, "clawos-init"))
	def(&c.Hook, filepath.Join(dir, "clawos-hook"))
	def(&c.Policy, filepath.Join(dir, "clawos-policy"))
	def(&c.Poststop, filepath.Join(dir, "clawos-poststop"))
	def(&c.PlanCache, plancache.DefaultDir(os.Geteuid()))
	def(&c.Runc, runcargs.DefaultRunc)
	def(&c.Runtime, "runc")
	def(&c.Timeout, DefaultTimeout.String())
	return c
}

// Check refuses a configuration that cannot work: relative paths, an
// unknown AppArmor mode, a bad timeout.
func (c Config) Check() error {
	for name, p := range map[string]string{"whitelist_dir": c.WhitelistDir, "state_dir": c.StateDir, "audit_log": c.AuditLog,
		"init": c.Init, "hook": c.Hook, "runc": c.Runc, "policy": c.Policy} {
		if !filepath.IsAbs(p) {
			return &clawerr.Error{Code: clawerr.EProto, Path: name, Message: fmt.Sprintf("%q is not an absolute path", p)}
		}
	}
	if c.Poststop != PoststopOff && !filepath.IsAbs(c.Poststop) {
		return &clawerr.Error{Code: clawerr.EProto, Path: "poststop", Message: fmt.Sprintf("%q is neither an absolute path nor %q", c.Poststop, PoststopOff)}
	}
	switch c.Landlock {
	case confine.LandlockAuto, confine.LandlockRequired, confine.LandlockOff:
	default:
		return &clawerr.Error{Code: clawerr.EProto, Path: "landlock", Message: fmt.Sprintf("%q: want auto, required or off", c.Landlock)}
	}
	switch c.AppArmor {
	case confine.AppArmorAuto, confine.AppArmorRequired, confine.AppArmorOff:
	default:
		return &clawerr.Error{Code: clawerr.EProto, Path: "apparmor", Message: fmt.Sprintf("%q: want auto, required or off", c.AppArmor)}
	}
	if _, err := c.timeout(); err != nil {
		return err
	}
	return nil
}

func (c Config) timeout() (time.Duration, error) {
	d, err := time.ParseDuration(c.Timeout)
	if err != nil || d <= 0 {
		return 0, &clawerr.Error{Code: clawerr.EProto, Path: "timeout", Message: fmt.Sprintf("%q is not a positive duration", c.Timeout)}
	}
	return d, nil
}

// TimeoutDuration is c.Timeout parsed; Check has refused a bad one.
func (c Config) TimeoutDuration() time.Duration {
	d, err := c.timeout()
	if err != nil {
		return DefaultTimeout
	}
	return d
}

// Args is c as clawos-hook's flags, for the hooks precreate injects.
func (c Config) Args() []string {
	args := []string{"--config", "", "--whitelist-dir", c.WhitelistDir, "--state-dir", c.StateDir, "--audit-log", c.AuditLog,
		"--apparmor", c.AppArmor, "--init", c.Init, "--poststop", c.Poststop, "--policy", c.Policy, "--plan-cache", c.PlanCache, "--runtime-name", c.Runtime, "--timeout", c.Timeout}
	if c.RequireSignature {
		args = append(args, "--require-signature")
	}
	return args
}

// ReadConfig reads a configuration file; a missing file is an empty
// configuration when missingOK.
func ReadConfig(path string, missingOK bool) (Config, error) {
	var c Config
	b, err := os.ReadFile(path)
	if err != nil {
		if missingOK && errors.Is(err, os.ErrNotExist) {
			return c, nil
		}
		return c, clawerr.Wrap(clawerr.ENoEnt, err, "read the configuration")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, &clawerr.Error{Code: clawerr.EProto, Path: path, Message: "not a clawos runtime configuration", Err: err}
	}
	return c, nil
}

// lookup is how the hook finds a validated whitelist: the plan cache
// (unless "off"), clawos-policy on a miss. Entries are for this
// clawos-hook and clawos-policy (their identity is part of the key); one
// that cannot be identified is validated every time.
func (c Config) lookup() plancache.Lookup {
	l := plancache.Lookup{EUID: os.Geteuid(), Validate: plancache.PolicyValidator(c.Policy)}
	if c.validate != nil {
		l.Validate = c.validate
	}
	if c.PlanCache != "off" {
		if build, err := plancache.Build(c.Hook, c.Policy); err == nil {
			l.Dir, l.Build = c.PlanCache, build
		}
	}
	return l
}
