// Command clawos-hook is the ClawOS OCI hook: `precreate` (podman, CRI-O)
// confines an annotated container's config read on stdin and prints it;
// `prestart` (or `createRuntime`) checks a container about to start and
// installs its port rules; `poststop` cleans up; `runc-wrap` does the
// runtime wrapper's (clawos-runc's) work for a call it must confine. The
// Kubernetes node installer is clawos-node. See hook and docs/hooks.md.
package main

import (
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == wrapStage {
		inherited = inheritedFDs() // before the Go runtime opens any of its own
		os.Exit(wrap(os.Args[2:], os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
