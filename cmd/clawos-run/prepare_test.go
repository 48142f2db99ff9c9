package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// BenchmarkPrepare measures everything clawos-run does before it runs the
// OCI runtime: validation, both stages, compilation, the spec.
func BenchmarkPrepare(b *testing.B) {
	c, err := parseFlags([]string{"--whitelist", "../../examples/ironclaw.whitelist.json", "--", "/usr/bin/true"}, io.Discard, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	l := &launcher{cfg: c, log: log, initPath: "../../bin/clawos-init"}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := l.prepare(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestAgentEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"TOKEN": "s3cret", "EMPTY": ""}[k]
		return v, ok
	}
	file := filepath.Join(t.TempDir(), "env")
	os.WriteFile(file, []byte("# comment\n\nA=1\nTOKEN\n  B = x\n"), 0o600)
	for _, c := range []struct {
		name  string
		flags []string
		file  string
		want  []string
		err   bool
	}{
		{"K=V", []string{"A=1", "B=two=2"}, "", []string{"A=1", "B=two=2"}, false},
		{"K from the caller", []string{"TOKEN", "EMPTY"}, "", []string{"TOKEN=s3cret", "EMPTY="}, false},
		{"K unset is refused", []string{"NOPE"}, "", nil, true},
		{"an empty name is refused", []string{"=x"}, "", nil, true},
		{"a file", nil, file, nil, true}, // "B = x": a name with a space
	} {
		got, err := agentEnv(c.flags, c.file, lookup)
		if (err != nil) != c.err || (!c.err && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("%s: %v %v, want %v (error %v)", c.name, got, err, c.want, c.err)
		}
	}
	os.WriteFile(file, []byte("# comment\n\nA=1\nTOKEN\n"), 0o600)
	if got, err := agentEnv([]string{"C=3"}, file, lookup); err != nil || !reflect.DeepEqual(got, []string{"C=3", "A=1", "TOKEN=s3cret"}) {
		t.Errorf("--env-file: %v %v", got, err)
	}
}

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
