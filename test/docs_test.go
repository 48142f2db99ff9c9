package test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestDocsReferences checks that what the documentation names exists: every
// repository path it mentions (docs/*.md, cmd/..., test/..., deploy/...),
// every clawos-run flag and every clawos-policy command, so that a renamed
// flag or moved file cannot leave the docs describing something that is not
// there.
func TestDocsReferences(t *testing.T) {
	docs, _ := filepath.Glob("../docs/*.md")
	docs = append(docs, "../README.md")
	run := built(t, "../bin/clawos-run")
	help, _ := exec.Command(run, "--help").CombinedOutput()
	runFlags := map[string]bool{"help": true}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(help), -1) {
		runFlags[m[1]] = true
	}
	if len(runFlags) < 20 {
		t.Fatalf("clawos-run --help lists %d flags: its format changed\n%s", len(runFlags), help)
	}
	policyHelp, _ := exec.Command(built(t, "../bin/clawos-policy")).CombinedOutput()
	pathRe := regexp.MustCompile("(?:^|[\\s(`\\[])((?:docs|cmd|test|internal|hook|translate|seccomp|namespaces|apparmor|deploy|examples|errors)/[A-Za-z0-9_.\\-/]*[A-Za-z0-9_])")
	runRe := regexp.MustCompile("clawos-run ([^`\\n|]*)")
	flagRe := regexp.MustCompile(`(?:^|\s)--([a-z][a-z0-9-]*)`)
	policyRe := regexp.MustCompile("clawos-policy ([a-z]+)")
	for _, doc := range docs {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for _, m := range pathRe.FindAllStringSubmatch(text, -1) {
			// A Go identifier after the package path (internal/platform.IA32)
			// names the package.
			p := regexp.MustCompile(`\.[A-Z]\w*$`).ReplaceAllString(strings.TrimSuffix(m[1], "."), "")
			if strings.ContainsAny(p, "*") || strings.Contains(p, "NAME") {
				continue
			}
			if _, err := os.Stat(filepath.Join("..", p)); err != nil {
				t.Errorf("%s names %s, which does not exist", filepath.Base(doc), p)
			}
		}
		for _, m := range runRe.FindAllStringSubmatch(text, -1) {
			own, _, _ := strings.Cut(m[1], " -- ") // the agent's arguments follow --
			for _, f := range flagRe.FindAllStringSubmatch(own, -1) {
				if !runFlags[f[1]] {
					t.Errorf("%s names clawos-run --%s, which clawos-run does not have", filepath.Base(doc), f[1])
				}
			}
		}
		for _, m := range policyRe.FindAllStringSubmatch(text, -1) {
			if !regexp.MustCompile(`(?m)^\s+` + m[1] + `\s`).Match(policyHelp) {
				t.Errorf("%s names clawos-policy %s, which is not a clawos-policy command", filepath.Base(doc), m[1])
			}
		}
	}
}

// TestMakeTargets: `make help` names every phony target, and `make
// uninstall` removes what `make install` put in DESTDIR but the
// administrator's /etc/clawos.
func TestMakeTargets(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\.PHONY:(.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no .PHONY line in the Makefile")
	}
	help, err := exec.Command("make", "-s", "-C", "..", "help").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range strings.Fields(string(m[1])) {
		if target != "all" && !regexp.MustCompile(`(?m)^make `+regexp.QuoteMeta(target)+` `).Match(help) {
			t.Errorf("make help does not list %s", target)
		}
	}
	dest := t.TempDir()
	if out, err := exec.Command("make", "-s", "-C", "..", "install", "DESTDIR="+dest).CombinedOutput(); err != nil {
		t.Fatalf("make install: %v %s", err, out)
	}
	installed := files(t, dest)
	if len(installed) < 9 {
		t.Fatalf("make install put %d files in DESTDIR: %v", len(installed), installed)
	}
	if out, err := exec.Command("make", "-s", "-C", "..", "uninstall", "DESTDIR="+dest).CombinedOutput(); err != nil {
		t.Fatalf("make uninstall: %v %s", err, out)
	}
	if left := files(t, dest); strings.Join(left, " ") != "etc/clawos/runtime.json" {
		t.Errorf("after make uninstall: %v, want only etc/clawos/runtime.json", left)
	}
}

// files lists the regular files under dir, relative to it.
func files(t *testing.T, dir string) []string {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLauncherTasks runs the console blocks of docs/launcher.md's common
// tasks in the directory they describe, as root, and checks that each
// command prints what the page shows (its lines in any order: the agent's
// output and clawos-run's log are two streams).
func TestLauncherTasks(t *testing.T) {
	s := requireSandbox(t)
	const dir = "/var/tmp/clawos-docs"
	os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	for _, d := range []string{"app", "project"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	chownUser(t, filepath.Join(dir, "project"))
	files := map[string]struct {
		data string
		mode os.FileMode
	}{
		"tools.json":   {string(mustRead(t, "testdata/tools.whitelist.json")), 0o644},
		"app/hello.sh": {"#!/usr/bin/env sh\necho \"hello from $0, uid $(id -u)\"\n", 0o755},
	}
	for name, f := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	// The commands use the default state directory, which another run on
	// this machine may have left a killed sandbox in: a first run cleans
	// it up (and says so), so that the blocks print only their own.
	warm := exec.Command(s.run, "--whitelist", "tools.json", "--", "/bin/true")
	warm.Dir = dir
	warm.Run()
	doc := string(mustRead(t, "../docs/launcher.md"))
	blocks := regexp.MustCompile("(?s)```console\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 3 {
		t.Fatalf("docs/launcher.md has %d console blocks", len(blocks))
	}
	for _, b := range blocks {
		var cmds, wants []string
		for _, line := range strings.Split(strings.TrimSuffix(b[1], "\n"), "\n") {
			if c, ok := strings.CutPrefix(line, "$ "); ok {
				cmds, wants = append(cmds, c), append(wants, "")
				continue
			}
			if len(wants) == 0 {
				t.Fatalf("output before a command in:\n%s", b[1])
			}
			wants[len(wants)-1] += line + "\n"
		}
		// One shell runs the block, a marker before each command; $? is
		// the previous command's status again after the marker.
		script := "exec 2>&1\nrc=0\n"
		for i, c := range cmds {
			script += fmt.Sprintf("echo '@@ %d'; (exit $rc); %s\nrc=$?\n", i, c)
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + filepath.Dir(s.run) + ":/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"}
		out, _ := cmd.Output()
		parts := regexp.MustCompile(`(?m)^@@ \d+\n`).Split(string(out), -1)[1:]
		if len(parts) != len(cmds) {
			t.Fatalf("block ran %d of %d commands:\n%s", len(parts), len(cmds), out)
		}
		for i, c := range cmds {
			if sortedLines(parts[i]) != sortedLines(wants[i]) {
				t.Errorf("$ %s\nprinted:\n%s\ndocs/launcher.md shows:\n%s", c, parts[i], wants[i])
			}
		}
	}
}

func sortedLines(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	sort.Strings(l)
	return strings.Join(l, "\n")
}

// TestExitStatuses checks the exit statuses docs/errors.md's table gives
// each program, for a usage error and a failure of its own.
func TestExitStatuses(t *testing.T) {
	bin := func(p string) string { return built(t, "../bin/"+p) }
	scratch := t.TempDir() // a node root for clawos-node
	for _, c := range []struct {
		name string
		args []string
		code int
	}{
		{"clawos-policy usage", []string{bin("clawos-policy")}, 2},
		{"clawos-policy failure: ENOENT is 10+3", []string{bin("clawos-policy"), "validate", "/nonexistent"}, 13},
		{"clawos-run usage", []string{bin("clawos-run")}, 125},
		{"clawos-run failure", []string{bin("clawos-run"), "--whitelist", "/nonexistent", "--", "/bin/true"}, 125},
		{"clawos-run command not found", []string{bin("clawos-run"), "--whitelist", probeWhitelist, "--", "/nonexistent"}, 127},
		{"clawos-hook usage", []string{bin("clawos-hook"), "--bogus"}, 2},
		{"clawos-hook failure", []string{bin("clawos-hook"), "precreate"}, 1},
		{"clawos-runc failure", []string{bin("clawos-runc"), "--bogus"}, 1},
		{"clawos-node usage", []string{bin("clawos-node")}, 2},
		{"clawos-node failure", []string{bin("clawos-node"), "install", "--host", scratch, "--from", filepath.Join(scratch, "none")}, 1},
		{"clawos-init usage", []string{bin("clawos-init")}, 127},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(c.args[0], c.args[1:]...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Errorf("%v: %v, want exit %d\n%s", c.args, err, c.code, out)
			}
		})
	}
}

// TestGeneratedDocs checks each documented program's manual page and bash
// completion (--generate man|bash, what make install writes): every flag
// its --help lists is in both, the completion is valid bash and completes
// a flag prefix to the flag; and make install puts them under PREFIX.
func TestGeneratedDocs(t *testing.T) {
	flagRe := regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`)
	for _, p := range []string{"clawos-run", "clawos-policy", "clawos-hook", "clawos-node"} {
		bin := built(t, "../bin/"+p)
		help, _ := exec.Command(bin, "--help").CombinedOutput()
		if p == "clawos-node" { // its flags are its subcommands'
			for _, sub := range []string{"install", "sync-whitelists"} {
				h, _ := exec.Command(bin, sub, "--help").CombinedOutput()
				help = append(help, h...)
			}
		}
		man, err := exec.Command(bin, "--generate", "man").Output()
		if err != nil || !bytes.HasPrefix(man, []byte(".TH ")) {
			t.Fatalf("%s --generate man: %v\n%s", p, err, man)
		}
		bash, err := exec.Command(bin, "--generate", "bash").Output()
		if err != nil {
			t.Fatalf("%s --generate bash: %v", p, err)
		}
		if out, err := exec.Command("bash", "-n", "-c", string(bash)).CombinedOutput(); err != nil {
			t.Errorf("%s's completion: bash -n: %v\n%s", p, err, out)
		}
		flags := flagRe.FindAllStringSubmatch(string(help), -1)
		if len(flags) < 3 {
			t.Fatalf("%s --help lists %d flags:\n%s", p, len(flags), help)
		}
		for _, f := range flags {
			if !bytes.Contains(man, []byte(`.B \-\-`+strings.ReplaceAll(f[1], "-", `\-`))) {
				t.Errorf("%s's manual page lacks --%s", p, f[1])
			}
			if !regexp.MustCompile(`[" ]--` + regexp.QuoteMeta(f[1]) + `[" ]`).Match(bash) {
				t.Errorf("%s's completion lacks --%s", p, f[1])
			}
		}
		fn := "_" + strings.ReplaceAll(p, "-", "_")
		out, err := exec.Command("bash", "-c", string(bash)+"\nCOMP_WORDS=("+p+" --vers); COMP_CWORD=1; "+fn+"; echo \"${COMPREPLY[*]}\"").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "--version" {
			t.Errorf("%s's completion of --vers: %q %v", p, out, err)
		}
	}
	dest := t.TempDir()
	if out, err := exec.Command("make", "-C", "..", "install", "DESTDIR="+dest, "PREFIX=/usr", "HOOKS_DIR=/usr/share/containers/oci/hooks.d").CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for _, f := range []string{"usr/share/man/man1/clawos-run.1", "usr/share/bash-completion/completions/clawos-run", "usr/share/man/man1/clawos-hook.1", "usr/share/man/man1/clawos-node.1"} {
		if fi, err := os.Stat(filepath.Join(dest, f)); err != nil || fi.Size() == 0 {
			t.Errorf("make install: %s: %v", f, err)
		}
	}
}
