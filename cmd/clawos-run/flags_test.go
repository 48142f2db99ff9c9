package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
)

// TestHelpAndLogFlags: --help goes to stdout with exit 0, a usage error to
// stderr with 2; --log-level takes the four levels and --quiet is error.
func TestHelpAndLogFlags(t *testing.T) {
	for _, tc := range []struct {
		args             []string
		code             int
		stdout, stderr   string
		noStdout, noErrs bool
	}{
		{[]string{"--help"}, 0, "usage: clawos-run", "", false, true},
		{[]string{"-h"}, 0, "-log-level", "", false, true},
		{[]string{"--no-such-flag"}, exitUsage, "", "usage: clawos-run", true, false},
		{[]string{"--log-level", "trace", "--whitelist", "x", "--", "true"}, exitUsage, "", "want debug, info, warn or error", true, false},
		{[]string{"--log-level", "loud", "--whitelist", "x", "--", "true"}, exitUsage, "", "want debug, info, warn or error", true, false},
	} {
		var stdout, stderr strings.Builder
		code := run(context.Background(), tc.args, strings.NewReader(""), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) ||
			(tc.noStdout && stdout.Len() > 0) || (tc.noErrs && stderr.Len() > 0) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", tc.args, code, stdout.String(), stderr.String())
		}
	}
}

// TestHotPathDeps: clawos-run and clawos-hook do not link the JSON Schema
// library (nor the message catalogue its diagnostics use): its package
// initialisation would run at every start (twice for clawos-run: the
// launcher and the container init libcontainer re-executes; up to three
// times per container for clawos-hook). Whitelists are validated by
// clawos-policy on a plan-cache miss. Nor does clawos-hook link the node
// installer's Kubernetes API client and TOML (clawos-node's): 13.8 MB
// instead of 8 MB, about a millisecond more at every exec. (clawos-runc,
// the front before every runc call, is C.)
func TestHotPathDeps(t *testing.T) {
	schema := []string{"github.com/santhosh-tekuri/jsonschema", "golang.org/x/text/message", "github.com/clawos/clawos-security/translate/schema"}
	for _, c := range []struct {
		prog   string
		banned []string
	}{
		{".", schema},
		{"../clawos-hook", append(schema, "net/http", "crypto/tls", "github.com/pelletier/go-toml", "github.com/clawos/clawos-security/internal/nodeinstall")},
	} {
		out, err := exec.Command("go", "list", "-deps", "-tags", "seccomp", c.prog).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", c.prog, err)
		}
		for _, pkg := range strings.Fields(string(out)) {
			for _, banned := range c.banned {
				if strings.HasPrefix(pkg, banned) {
					t.Errorf("%s links %s", c.prog, pkg)
				}
			}
		}
	}
}
