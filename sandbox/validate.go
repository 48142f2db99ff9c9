package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/translate"
)

// Validator validates a whitelist fully (the P1.2 schema, then every
// check), for a plan whose cache has no entry for it: ProbeHost's runs
// clawos-policy, so that this package, and clawos-run, never link the
// JSON Schema library (its initialisation would cost every start, and the
// container init's that libcontainer re-executes). key is the entry's
// cache key.
type Validator func(raw []byte, opts translate.Options, key string) (plancache.Result, error)

// validateTimeout bounds clawos-policy's validation.
const validateTimeout = 30 * time.Second

// PolicyValidator validates with the clawos-policy program at policy:
// compile --plan, the whitelist on its standard input.
func PolicyValidator(policy string) Validator {
	return func(raw []byte, opts translate.Options, key string) (plancache.Result, error) {
		args := []string{"compile", "--plan", "--cache", "off", "--baseline", strings.Join(opts.Baselines, ",")}
		if len(opts.Baselines) == 0 {
			args[len(args)-1] = "none"
		}
		if opts.Arch != "" {
			args = append(args, "--arch", string(opts.Arch))
		}
		if opts.RequireSignature {
			args = append(args, "--require-signature")
		}
		if opts.InitReaper {
			args = append(args, "--init-reaper")
		}
		ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, policy, append(args, "-")...)
		cmd.Stdin = bytes.NewReader(raw)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return plancache.Result{}, &clawerr.Error{Code: clawerr.EInternal, Message: "clawos-policy could not validate the whitelist",
				Err: fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))}
		}
		var res plancache.Result
		if err := json.Unmarshal(out, &res); err != nil {
			return plancache.Result{}, clawerr.Wrap(clawerr.EInternal, err, "clawos-policy's validation result")
		}
		if res.Entry != nil {
			res.Entry.Key = key
		}
		return res, nil
	}
}

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

// whitelist is the validated whitelist of raw (name in messages): from the
// plan cache, or validated fully by the host's validator and then cached.
// A cache that cannot be used is said at debug level and skipped: the full
// validation runs instead.
func (h Host) whitelist(name string, raw []byte, opts translate.Options, log logrus.FieldLogger) (*translate.Whitelist, error) {
	key := plancache.Key(raw, opts, h.Build)
	var cache *plancache.Cache
	if h.PlanCache != "" {
		c, err := plancache.Open(h.PlanCache, h.EUID)
		if err != nil {
			log.WithError(err).Debug("the plan cache is not used")
		}
		cache = c
	}
	var e *plancache.Entry
	if cache != nil {
		e = cache.Get(key)
	}
	if e == nil {
		if h.Validate == nil {
			return nil, clawerr.New(clawerr.EInternal, "no validator for the whitelist (Host.Validate)")
		}
		res, err := h.Validate(raw, opts, key)
		if err != nil {
			return nil, err
		}
		if err := res.Err(); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		e = res.Entry
		if cache != nil {
			if err := cache.Put(e); err != nil {
				log.WithError(err).Debug("the plan cache is not written")
			}
		}
	}
	for _, d := range e.Warnings {
		log.WithFields(logrus.Fields{"path": d.Path, "check": d.Check}).Warn(d.Message)
	}
	return e.Decode()
}
