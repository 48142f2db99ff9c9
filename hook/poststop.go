package hook

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/runcargs"
)

// quickPath is clawos-poststop's file for container id, beside its state
// record: DIR/ID.poststop.
func quickPath(cfg Config, id string) string {
	return strings.TrimSuffix(statePath(cfg, id), ".json") + ".poststop"
}

// quickFileVersion is the first line of clawos-poststop's file.
const quickFileVersion = "clawos-poststop 1"

// quickFile renders clawos-poststop's file (cmd/clawos-poststop) for the
// container of rec, whose poststop stage will have nothing to do but remove it
// and write its audit record, unless the kernel's audit thread has run
// since rec's mark: the id, the mark, and the audit record Poststop would
// write then, rendered by NewRecord, after its time. ok is false where
// poststop has more to do (port rules in a joined namespace, an AppArmor
// profile held), no mark was taken, or the id is one clawos-poststop does
// not read.
func quickFile(rec record) (b []byte, ok bool, err error) {
	id := rec.ID
	if rec.Audit == nil || rec.NetNS != "" || rec.Table != "" || rec.AppArmor != "" || !runcargs.ValidID(id) {
		return nil, false, nil
	}
	r := NewRecord("poststop", id, &Outcome{Whitelist: rec.Whitelist, WhitelistID: rec.WhitelistID, Digest: rec.Digest}, nil)
	line, err := json.Marshal(r)
	if err != nil {
		return nil, false, clawerr.Wrap(clawerr.EInternal, err, "encode the poststop audit record")
	}
	at, err := json.Marshal(r.Time)
	if err != nil {
		return nil, false, clawerr.Wrap(clawerr.EInternal, err, "encode the poststop audit record's time")
	}
	head := append([]byte(`{"time":`), at...)
	if !bytes.HasPrefix(line, head) {
		return nil, false, clawerr.New(clawerr.EInternal, "the audit record does not begin with its time")
	}
	return fmt.Appendf(nil, "%s\nid %s\nmark %d %d\n%s\n", quickFileVersion, id, rec.Audit.Pid, rec.Audit.Sleeps, line[len(head):]), true, nil
}

// syncQuickFile writes clawos-poststop's file where spec's poststop hook
// is clawos-poststop and quickFile renders one for rec, and removes the
// file otherwise (a container of the same id before this one may have left
// it): before the state record is written, so that clawos-poststop never
// acts on a file that is not this record's.
func syncQuickFile(cfg Config, spec *specs.Spec, rec record) error {
	path := quickPath(cfg, rec.ID)
	if hasQuickPoststop(spec, cfg) {
		b, ok, err := quickFile(rec)
		if err != nil {
			return err
		}
		if ok {
			return atomicfile.WriteState(path, b, 0o600)
		}
	}
	return removeQuickFile(path)
}

func removeQuickFile(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return clawerr.Wrap(clawerr.EIO, err, "remove clawos-poststop's file")
	}
	return nil
}
