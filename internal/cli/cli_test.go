package cli

import (
	"bytes"
	"flag"
	"os/exec"
	"strings"
	"testing"

	"github.com/clawos/clawos-security/internal/golden"
)

func sample() Command {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.String("whitelist", "", "P1.2 `file` (required)")
	fs.Bool("quiet", false, "log errors only")
	fs.String("net", "loopback", "network: none, loopback or host")
	sub := flag.NewFlagSet("explain", flag.ContinueOnError)
	sub.String("arch", "", "architecture")
	return Command{Name: "demo-run", Summary: "run a demo", Synopsis: "[flags] -- CMD [ARGS...]",
		Description: "Runs CMD.\n.a line that starts with a dot", Flags: fs,
		Sub: []Command{{Name: "explain", Synopsis: "[flags] WHITELIST", Summary: "explain it", Flags: sub}}}
}

// TestGenerate checks the manual page and the completion against golden
// files, the completion's syntax with bash -n, and what it completes.
func TestGenerate(t *testing.T) {
	for _, kind := range []string{"man", "bash"} {
		var b bytes.Buffer
		if err := Generate(&b, sample(), kind, "0.1.0"); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "demo."+kind, b.Bytes())
	}
	if err := Generate(&bytes.Buffer{}, sample(), "zsh", "0.1.0"); err == nil {
		t.Error("an unknown kind was accepted")
	}
	var b bytes.Buffer
	Bash(&b, sample())
	if out, err := exec.Command("bash", "-n", "-c", b.String()).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	complete := func(line ...string) string {
		script := b.String() + "\nCOMP_WORDS=(" + strings.Join(line, " ") + "); COMP_CWORD=" + string(rune('0'+len(line)-1)) + "; _demo_run; echo \"${COMPREPLY[*]}\""
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		line []string
		want string
	}{
		{[]string{"demo-run", "--wh"}, "--whitelist"},
		{[]string{"demo-run", "ex"}, "explain"},
		{[]string{"demo-run", "explain", "--a"}, "--arch"},
		{[]string{"demo-run", "--q"}, "--quiet"},
	} {
		if got := complete(c.line...); got != c.want {
			t.Errorf("%v: %q, want %q", c.line, got, c.want)
		}
	}
}
