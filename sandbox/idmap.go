package sandbox

import (
	"os"
	"path/filepath"
	"strconv"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/idmap"
)

// idmapDir is where a sandbox's idmapped mounts are staged on the host
// while its runtime creates it: outside its bundle, which is removed
// recursively (never through a mount of the caller's files).
func idmapDir(stateDir, id string) string { return filepath.Join(stateDir, "idmap", id) }

// stageIDMaps makes every mount of the sandbox's spec that asks for an
// idmapping (namespaces.View.IDMap) an idmapped mount staged on the host,
// and points the spec's mount at it: the runtime binds it as it is, so
// both runtimes give the same result (runc before 1.2 ignores a mount's
// uidMappings). The destinations are recorded for checkIDMapped.
// unstageAll(idmapDir(stateDir, id)) undoes the staging; the runtime's
// copies in the sandbox stay.
func stageIDMaps(stateDir string, s *Sandbox) error {
	dir := idmapDir(stateDir, s.plan.ID)
	for i := range s.spec.Mounts {
		m := &s.spec.Mounts[i]
		if len(m.UIDMappings) == 0 {
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "idmapped mounts")
		}
		target := filepath.Join(dir, strconv.Itoa(i))
		mp := idmap.Mapping{UID: m.UIDMappings[0].ContainerID, GID: m.GIDMappings[0].ContainerID, HostID: m.UIDMappings[0].HostID}
		if err := idmap.Stage(m.Source, target, mp); err != nil {
			return &clawerr.Error{Code: clawerr.EPerm, Message: "a writable bind (or a workspace's) must be an idmapped mount, so that the agent's files belong to the caller",
				Hint: "bind a directory of a filesystem that supports idmapped mounts (ext4, xfs, btrfs, tmpfs 6.3+) on Linux 5.12+", Err: err}
		}
		m.Source, m.UIDMappings, m.GIDMappings = target, nil, nil
		s.idmapped = append(s.idmapped, m.Destination)
	}
	return nil
}

// unstageAll detaches and removes every staged mount under dir, then dir.
func unstageAll(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		idmap.Unstage(filepath.Join(dir, e.Name()))
	}
	os.Remove(dir)
}
