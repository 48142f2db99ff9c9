package sandbox

import (
	"os"
	"path/filepath"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/translate"
)

// findProgram locates a program of clawos-security next to this
// executable; the path is resolved before anything enters a namespace.
func findProgram(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", clawerr.Wrap(clawerr.EInternal, err, "locate clawos-run")
	}
	p := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(p); err != nil {
		return "", &clawerr.Error{Code: clawerr.ENoEnt, Message: name + " is not next to clawos-run", Err: err,
			Hint: "make build puts every program in bin/, make install in one directory"}
	}
	return p, nil
}

// whitelist is the validated whitelist of raw (name in messages), through
// the host's plan cache (plancache.Lookup).
func (h Host) whitelist(name string, raw []byte, opts translate.Options, log logrus.FieldLogger) (*translate.Whitelist, error) {
	wl, _, err := plancache.Lookup{Dir: h.PlanCache, EUID: h.EUID, Build: h.Build, Validate: h.Validate}.Whitelist(name, raw, opts, log)
	return wl, err
}

// Validator validates a whitelist fully for a plan whose cache has no
// entry for it (plancache.Validator); ProbeHost's runs clawos-policy.
type Validator = plancache.Validator

// PolicyValidator validates with the clawos-policy program at policy
// (plancache.PolicyValidator).
func PolicyValidator(policy string) Validator { return plancache.PolicyValidator(policy) }
