package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/annotations"
)

// Annotations ClawOS writes into an OCI config (package annotations is
// the table).
const (
	// AnnotationWhitelistID is the whitelist_id of the applied whitelist.
	AnnotationWhitelistID = annotations.WhitelistID
	// AnnotationProfileDigest is "sha256:" and the hex SHA-256 of the
	// linux.seccomp section as SeccompJSON writes it; later stages compare
	// it with the config they are given.
	AnnotationProfileDigest = annotations.ProfileDigest
	// AnnotationNetworkPolicy is the NetworkPolicy as JSON: the port
	// restrictions that seccomp cannot enforce.
	AnnotationNetworkPolicy = annotations.NetworkPolicy
)

// ProfileDigest returns "sha256:<hex>" of the seccomp section's JSON.
func ProfileDigest(s *specs.LinuxSeccomp) (string, error) {
	b, err := MarshalSeccomp(s)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ApplyToSpec puts a profile into an OCI config: linux.seccomp, no_new_privs
// (without it runc must load the filter before dropping privileges, so the
// filter would also have to allow runc's own setuid and capset calls), and
// the ClawOS annotations.
func ApplyToSpec(s *specs.Spec, wl *Whitelist, p *Profile) error {
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.Seccomp = p.Seccomp
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	s.Process.NoNewPrivileges = true
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	digest, err := ProfileDigest(p.Seccomp)
	if err != nil {
		return err
	}
	s.Annotations[AnnotationWhitelistID] = wl.WhitelistID
	s.Annotations[AnnotationProfileDigest] = digest
	delete(s.Annotations, AnnotationNetworkPolicy)
	if p.Network.Restricted() {
		b, err := json.Marshal(p.Network)
		if err != nil {
			return clawerr.Wrap(clawerr.EInternal, err, "encode network policy")
		}
		s.Annotations[AnnotationNetworkPolicy] = string(b)
	}
	return nil
}
