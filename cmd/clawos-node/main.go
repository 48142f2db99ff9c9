// Command clawos-node is the Kubernetes node installer of clawos-security,
// the installer DaemonSet's program (deploy/installer.yaml): `install`
// puts the static programs, the runtime configuration, the trusted
// whitelists and containerd's clawos runtime handler on the node (its init
// container; deploy/install-node.sh runs it from a checkout), and
// `sync-whitelists` keeps the node's whitelists equal to a ConfigMap (its
// main container). It is a program of its own so that clawos-hook, which
// engines exec for every container, links neither its Kubernetes API
// client (net/http, crypto/tls) nor containerd's TOML. See
// internal/nodeinstall and docs/kubernetes.md.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/clawos/clawos-security/internal/cli"
	"github.com/clawos/clawos-security/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: clawos-node install [flags]
       clawos-node sync-whitelists [flags]

install: put clawos-security on a Kubernetes node (--host, the node's root
as seen here): the programs in PREFIX/bin, /etc/clawos/runtime.json, the
whitelists of --whitelists validated into /etc/clawos/whitelists, the plan
cache pre-warmed for them and, with --containerd, the clawos runtime
handler. sync-whitelists: keep the node's whitelists equal to a ConfigMap.
clawos-node SUBCOMMAND --help lists a subcommand's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case installCmd:
			return installNode(args[1:], stdout, stderr)
		case syncCmd:
			return syncWhitelists(args[1:], stderr)
		}
	}
	fs := flag.NewFlagSet("clawos-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	showVersion := fs.Bool("version", false, "print the version and exit")
	generate := fs.String("generate", "", "print the manual page (man) or bash completion (bash), generated from the flags, and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch {
	case *showVersion:
		fmt.Fprintln(stdout, version.String("clawos-node"))
		return 0
	case *generate != "":
		install, _, _, _ := installFlags(io.Discard)
		sync, _, _, _, _, _ := syncFlags(io.Discard)
		c := cli.Command{Name: "clawos-node", Summary: "the Kubernetes node installer of clawos-security",
			Synopsis: "install|sync-whitelists [flags]", Description: usage, Flags: fs,
			Sub: []cli.Command{
				{Name: installCmd, Synopsis: "[flags]", Summary: "install the node side of clawos-security (the Kubernetes installer's init container)", Flags: install},
				{Name: syncCmd, Synopsis: "[flags]", Summary: "keep the node's whitelists equal to a ConfigMap (the installer's main container)", Flags: sync},
			}}
		if err := cli.Generate(stdout, c, *generate, version.Module()); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		return 0
	}
	fs.Usage()
	return 2
}
