package hook

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/internal/runcargs"
)

// Prewarm stores in the plan cache of the node whose root is host (as this
// process sees it: "/" on the node itself, "/host" in the installer's
// container) the entries the node's clawos-hook looks up for each
// whitelist file, with the options of a container that names no baseline,
// so that the first container of a whitelist does not wait for its
// validation. cfg is the node's configuration with its defaults (its
// paths are the node's); validate validates a whitelist that has no entry
// yet (the installer's clawos-policy, the build installed on the node).
// An entry is keyed by the identity of the node's clawos-hook and
// clawos-policy files, which a bind of the node's root shows unchanged.
func Prewarm(cfg Config, host string, whitelists []string, validate plancache.Validator, log logrus.FieldLogger) error {
	if cfg.PlanCache == "off" {
		return nil
	}
	onHost := func(p string) string { return filepath.Join(host, p) }
	build, err := plancache.Build(onHost(cfg.Hook), onHost(cfg.Policy))
	if err != nil {
		return err
	}
	opts, err := options(runcargs.Request{}, cfg)
	if err != nil {
		return err
	}
	dir := onHost(cfg.PlanCache)
	// Lookup goes on without a cache it cannot use; a pre-warm that
	// stores nothing must say so.
	if _, err := plancache.Open(dir, os.Geteuid()); err != nil {
		return err
	}
	l := plancache.Lookup{Dir: dir, EUID: os.Geteuid(), Build: build, Validate: validate}
	for _, w := range whitelists {
		raw, err := os.ReadFile(w)
		if err != nil {
			return fmt.Errorf("pre-warm the plan cache: %w", err)
		}
		// One the node's options refuse (an unsigned whitelist where
		// signatures are required) is refused at its container's create
		// as well, with the same diagnostics; nothing is stored for it.
		if _, _, err := l.Whitelist(filepath.Base(w), raw, opts, log); err != nil {
			log.WithError(err).WithField("whitelist", filepath.Base(w)).Warn("not pre-validated for the node's hook: its containers will be refused")
		}
	}
	return nil
}
