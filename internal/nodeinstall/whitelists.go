package nodeinstall

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/translate"
)

// SyncResult is what SyncWhitelists did.
type SyncResult struct {
	Installed, Removed, Unchanged []string
	// Refused maps a source entry to why it was not installed.
	Refused map[string]string
	// Dir is the node's directory the sync wrote to.
	Dir string
}

// Paths are the files of the whitelists that are on the node after the
// sync (installed or unchanged), sorted.
func (r *SyncResult) Paths() []string {
	var out []string
	for _, n := range append(append([]string{}, r.Installed...), r.Unchanged...) {
		out = append(out, filepath.Join(r.Dir, n))
	}
	sort.Strings(out)
	return out
}

// SyncWhitelists makes dst, the node's trusted whitelist directory, hold
// exactly the valid whitelists of src (a ConfigMap volume: NAME.json
// entries that are symlinks into its own ..data directory): each is
// validated as every entry point validates it (the P1.2 schema and checks,
// the signature when signed) and written atomically when its content
// changed; a NAME.json of dst that src no longer has is removed. An entry
// that leads out of src, is not a regular file, or is not a valid
// whitelist is refused by name and never installed; a refused name keeps
// the node's current copy, if any, so that a bad update does not remove a
// good whitelist. Only NAME.json files are touched in dst.
func SyncWhitelists(src, dst string, validate plancache.Validator, log logrus.FieldLogger) (*SyncResult, error) {
	res := &SyncResult{Refused: map[string]string{}, Dir: dst}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return nil, fmt.Errorf("whitelists: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, fmt.Errorf("whitelists: %w", err)
	}
	entries, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return nil, err
	}
	// Validated fully, with no cache: the installer's own programs are not
	// the node's.
	check := plancache.Lookup{Validate: validate}
	want := map[string]bool{}
	for _, e := range entries {
		name := filepath.Base(e)
		want[name] = true
		data, why := readEntry(e, real)
		if why == "" {
			if _, _, err := check.Whitelist(name, data, translate.Options{}, log); err != nil {
				why = "not a valid whitelist: " + err.Error()
			}
		}
		if why != "" {
			res.Refused[name] = why
			continue
		}
		changed, err := writeIfChanged(filepath.Join(dst, name), data, 0o644)
		if err != nil {
			return res, fmt.Errorf("install whitelist %s: %w", name, err)
		}
		if changed {
			res.Installed = append(res.Installed, name)
		} else {
			res.Unchanged = append(res.Unchanged, name)
		}
	}
	have, err := filepath.Glob(filepath.Join(dst, "*.json"))
	if err != nil {
		return res, err
	}
	for _, h := range have {
		name := filepath.Base(h)
		if want[name] {
			continue
		}
		if err := os.Remove(h); err != nil {
			return res, fmt.Errorf("remove whitelist %s: %w", name, err)
		}
		res.Removed = append(res.Removed, name)
	}
	sort.Strings(res.Installed)
	sort.Strings(res.Removed)
	return res, nil
}

// readEntry reads a source entry, or says why it is refused: it must
// resolve inside the source directory (real) to a regular file.
func readEntry(path, real string) ([]byte, string) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, "cannot be resolved: " + err.Error()
	}
	if !strings.HasPrefix(target, real+string(filepath.Separator)) {
		return nil, "it leads out of the whitelist source directory"
	}
	fi, err := os.Stat(target)
	if err != nil || !fi.Mode().IsRegular() {
		return nil, "not a regular file"
	}
	if fi.Size() > 4<<20 {
		return nil, "larger than 4 MiB"
	}
	data, err := os.ReadFile(target)
	if err != nil {
		return nil, err.Error()
	}
	return data, ""
}
