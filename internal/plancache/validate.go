package plancache

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/translate"
)

// Validator validates a whitelist fully (the P1.2 schema, then every
// check) when the cache has no entry for it: PolicyValidator runs
// clawos-policy, so that clawos-run and clawos-hook never link the JSON
// Schema library (its initialisation would cost every start). key is the
// entry's cache key.
type Validator func(raw []byte, opts translate.Options, key string) (Result, error)

// validateTimeout bounds clawos-policy's validation.
const validateTimeout = 30 * time.Second

// PolicyValidator validates with the clawos-policy program at policy:
// compile --plan, the whitelist on its standard input.
func PolicyValidator(policy string) Validator {
	return func(raw []byte, opts translate.Options, key string) (Result, error) {
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
			return Result{}, &clawerr.Error{Code: clawerr.EInternal, Message: "clawos-policy could not validate the whitelist",
				Err: fmt.Errorf("%w: %s", err, bytes.TrimSpace(stderr.Bytes()))}
		}
		var res Result
		if err := json.Unmarshal(out, &res); err != nil {
			return Result{}, clawerr.Wrap(clawerr.EInternal, err, "clawos-policy's validation result")
		}
		if res.Entry != nil {
			res.Entry.Key = key
		}
		return res, nil
	}
}

// Lookup is how a program finds a validated whitelist: its cache (Dir,
// "" for none, opened for EUID), the identity of the programs its entries
// are for (Build), and what validates on a miss.
type Lookup struct {
	Dir      string
	EUID     int
	Build    string
	Validate Validator
}

// Whitelist is the validated whitelist of raw (name in messages), with its
// signature state: from the cache, or validated fully by l.Validate and
// then cached. A cache that cannot be used is said at debug level and
// skipped: the full validation runs instead, never a weaker one. The
// signature state is known for an invalid whitelist too (audit records).
func (l Lookup) Whitelist(name string, raw []byte, opts translate.Options, log logrus.FieldLogger) (*translate.Whitelist, translate.SignatureState, error) {
	key := Key(raw, opts, l.Build)
	var cache *Cache
	if l.Dir != "" {
		c, err := Open(l.Dir, l.EUID)
		if err != nil {
			log.WithError(err).Debug("the plan cache is not used")
		}
		cache = c
	}
	var e *Entry
	if cache != nil {
		e = cache.Get(key)
	}
	if e == nil {
		if l.Validate == nil {
			return nil, "", clawerr.New(clawerr.EInternal, "no validator for the whitelist")
		}
		res, err := l.Validate(raw, opts, key)
		if err != nil {
			return nil, "", err
		}
		if err := res.Err(); err != nil {
			sig := res.Signature
			if sig == "" {
				sig = translate.SignatureOf(raw)
			}
			return nil, sig, fmt.Errorf("%s: %w", name, err)
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
	wl, err := e.Decode()
	return wl, e.Signature, err
}
