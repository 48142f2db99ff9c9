// Command clawos-run runs a program as a confined ClawOS agent: in its own
// namespaces, under exactly its P1.2 whitelist, with its port restrictions
// enforced in its own network namespace. See `clawos-run --help`.
package main

import (
	"context"
	"os"

	"github.com/clawos/clawos-security/internal/platform"
	"github.com/clawos/clawos-security/sandbox"
)

func init() {
	// The container's init, when libcontainer re-executes this binary as
	// one: it never returns then.
	sandbox.Reexec()
}

func main() {
	platform.RunChild() // a platform probe of --check, in a process of its own
	if len(os.Args) > 1 && os.Args[1] == finishArg {
		os.Exit(finish(context.Background(), os.Args[2:], os.Stderr))
	}
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
