// Package version names a build of a clawos program: its module version
// and commit, Go, libseccomp and runc's libcontainer.
package version

import (
	"fmt"
	goruntime "runtime"
	"runtime/debug"

	libseccomp "github.com/seccomp/libseccomp-golang"
)

// String names this build of prog: its module version and commit, Go,
// libseccomp (linked) and runc's libcontainer (embedded).
func String(prog string) string {
	version, commit, runc := "(devel)", "unknown", "not linked"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
		for _, d := range bi.Deps {
			if d.Path == "github.com/opencontainers/runc" {
				runc = d.Version
			}
		}
	}
	major, minor, micro := libseccomp.GetLibraryVersion()
	return fmt.Sprintf("%s %s commit %s %s libseccomp %d.%d.%d runc/libcontainer %s",
		prog, version, commit, goruntime.Version(), major, minor, micro, runc)
}

// Module is this build's module version, "(devel)" for a build from a
// checkout.
func Module() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
