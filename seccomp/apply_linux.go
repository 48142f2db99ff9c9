package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/translate"
)

// Apply loads the filter of an OCI seccomp section into the calling process.
// libseccomp sets no_new_privs first (so no privilege is needed) and loads
// with SECCOMP_FILTER_FLAG_TSYNC, so every thread of the process, including
// the Go runtime's, is covered; if some thread cannot be synchronised, the
// load fails and nothing is applied.
func Apply(s *specs.LinuxSeccomp) error {
	f, err := Build(s)
	if err != nil {
		return err
	}
	defer f.Release()
	if err := f.Load(); err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "load seccomp filter")
	}
	return nil
}

// ApplyWhitelist translates a validated whitelist for the native
// architecture and applies it (the equivalent of the upstream crate's
// SeccompFilter::new(whitelist)?.apply()).
func ApplyWhitelist(wl *translate.Whitelist, opts translate.Options) error {
	opts.Arch = ""
	p, err := translate.Translate(wl, opts)
	if err != nil {
		return err
	}
	return Apply(p.Seccomp)
}
