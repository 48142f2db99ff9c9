// Package nodeinstall installs clawos-security's runtime side on a
// Kubernetes node, from the installer DaemonSet (clawos-hook install-node,
// sync-whitelists) or by hand: the static programs, the runtime wrapper's
// configuration, the trusted whitelists (validated, kept in sync with the
// operator's ConfigMap), containerd's runtime handler as a drop-in for its
// configuration version and the node's cgroup driver, a containerd restart
// only when that changed, a health check through the wrapper, and the
// node's readiness label.
package nodeinstall

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/plancache"
)

// Programs are what a node runs: the wrapper, the hook it hands confined
// calls to, the poststop hook's quick path, and the agent's init.
var Programs = []string{"clawos-init", "clawos-hook", "clawos-runc", "clawos-poststop", "clawos-policy"}

// Options says where things are.
type Options struct {
	// Host is the node's root as this process sees it ("/" by hand,
	// "/host" in the DaemonSet).
	Host string
	// Prefix is where the programs go on the node, Prefix/bin (absolute).
	Prefix string
	// From holds bin/ (the programs) and deploy/runtime.json.
	From string
	// Whitelists is a directory of NAME.json whitelists, "" for none.
	Whitelists string
	// Containerd: configure containerd's runtime handler.
	Containerd bool
	// Validate validates each whitelist fully before it is installed
	// (plancache.PolicyValidator: clawos-policy).
	Validate plancache.Validator
}

// Result is what Install did.
type Result struct {
	Whitelists *SyncResult
	Containerd *Containerd
}

// runcPaths are where distributions put runc: containerd.io's packages
// and upstream releases /usr/bin or /usr/local, Debian's and Ubuntu's
// /usr/sbin.
var runcPaths = []string{"/usr/bin/runc", "/usr/sbin/runc", "/usr/local/bin/runc", "/usr/local/sbin/runc"}

// withNodeRunc sets the default runtime configuration's "runc" to the
// node's runc where the default path has none and another has (Debian's
// is /usr/sbin/runc): the wrapper execs exactly that path.
func withNodeRunc(host string, data []byte) ([]byte, error) {
	var cfg map[string]any
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, fmt.Errorf("deploy/runtime.json: %w", err)
	}
	want, _ := cfg["runc"].(string)
	if want != "" {
		if _, err := os.Stat(filepath.Join(host, want)); err == nil {
			return data, nil
		}
	}
	for _, p := range runcPaths {
		if fi, err := os.Stat(filepath.Join(host, p)); err == nil && fi.Mode().IsRegular() {
			cfg["runc"] = p
			return json.MarshalIndent(cfg, "", "  ")
		}
	}
	return data, nil // no runc found: the health check says so
}

// Install puts the programs under Host/Prefix/bin, the runtime
// configuration at Host/etc/clawos/runtime.json unless one is there, the
// whitelists in Host/etc/clawos/whitelists, and, with Containerd, the
// handler's drop-in; every file atomically.
func Install(o Options, log logrus.FieldLogger) (*Result, error) {
	if !filepath.IsAbs(o.Prefix) {
		return nil, fmt.Errorf("the prefix must be an absolute path, not %q", o.Prefix)
	}
	bin := filepath.Join(o.Host, o.Prefix, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	for _, p := range Programs {
		data, err := os.ReadFile(filepath.Join(o.From, "bin", p))
		if err != nil {
			return nil, fmt.Errorf("%s: %w (make build)", p, err)
		}
		if _, err := writeIfChanged(filepath.Join(bin, p), data, 0o755); err != nil {
			return nil, fmt.Errorf("install %s: %w", p, err)
		}
	}
	etc := filepath.Join(o.Host, "etc/clawos")
	rt := filepath.Join(etc, "runtime.json")
	if _, err := os.Stat(rt); os.IsNotExist(err) {
		data, err := os.ReadFile(filepath.Join(o.From, "deploy/runtime.json"))
		if err != nil {
			return nil, err
		}
		if data, err = withNodeRunc(o.Host, data); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(etc, 0o755); err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(rt, data, 0o644); err != nil {
			return nil, err
		}
	}
	res := &Result{}
	if o.Whitelists != "" {
		r, err := SyncWhitelists(o.Whitelists, filepath.Join(etc, "whitelists"), o.Validate, log)
		if err != nil {
			return res, err
		}
		res.Whitelists = r
	}
	if o.Containerd {
		c, err := ConfigureContainerd(o.Host, filepath.Join(o.Prefix, "bin", "clawos-runc"))
		if err != nil {
			return res, err
		}
		res.Containerd = c
	}
	return res, nil
}
