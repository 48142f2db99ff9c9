package test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/clawos/clawos-security/internal/runcargs"
)

// fronts are the front as built and under AddressSanitizer and UBSan (a
// sanitizer's report fails the call).
func fronts(t *testing.T) []string {
	return []string{built(t, "../bin/clawos-runc"), built(t, "../bin/clawos-runc-san")}
}

// frontFixture is the runtime wrapper's front (bin/clawos-runc, C) linked
// into a directory whose clawos-runc.json names two recorders as "runc"
// and "hook": each prints its name and arguments, so a call shows where
// the front routed it. Bundles: "plain" (no ClawOS annotation), "agent"
// (io.clawos.whitelist), "named" (a CRI container's whitelist.clawos.io/
// form), "escaped" (the key spelled with a \u escape), "upper" ("CLAWOS"
// in a value), "link" (config.json a symlink to agent's), "none" (no
// config.json).
type frontFixture struct {
	dir, front string
}

func newFrontFixture(t *testing.T, bin, config string) frontFixture {
	t.Helper()
	dir := t.TempDir()
	front := filepath.Join(dir, "clawos-runc")
	if err := os.Symlink(bin, front); err != nil {
		t.Fatal(err)
	}
	// clawos-hook next to the wrapper is the default hook.
	for file, name := range map[string]string{"rec-runc": "runc", "rec-hook": "hook", "clawos-hook": "hook"} {
		script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' %s \"$@\"\n", name)
		if err := os.WriteFile(filepath.Join(dir, file), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if config == "" {
		config = fmt.Sprintf(`{"runc": %q, "hook": %q, "whitelist_dir": "/etc/clawos/whitelists", "timeout": "10s"}`,
			filepath.Join(dir, "rec-runc"), filepath.Join(dir, "rec-hook"))
	}
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "clawos-runc.json"), config)
	for name, cfg := range map[string]string{
		"plain":   `{"ociVersion": "1.2.0", "process": {"args": ["/agent"]}, "annotations": {"io.kubernetes.cri.container-type": "container"}}`,
		"agent":   `{"ociVersion": "1.2.0", "process": {"args": ["/agent"]}, "annotations": {"io.clawos.whitelist": "agent"}}`,
		"named":   `{"ociVersion": "1.2.0", "annotations": {"io.kubernetes.cri.container-name": "a", "whitelist.clawos.io/a": "agent"}}`,
		"escaped": `{"ociVersion": "1.2.0", "annotations": {"io.\u0063lawos.whitelist": "agent"}}`,
		"upper":   `{"ociVersion": "1.2.0", "annotations": {"note": "CLAWOS"}}`,
	} {
		write(filepath.Join(dir, name, "config.json"), cfg)
	}
	os.MkdirAll(filepath.Join(dir, "link"), 0o755)
	os.Symlink(filepath.Join(dir, "agent", "config.json"), filepath.Join(dir, "link", "config.json"))
	os.MkdirAll(filepath.Join(dir, "none"), 0o755)
	return frontFixture{dir: dir, front: front}
}

// call runs the front with runc's arguments in directory cwd and returns
// where it went ("runc" or "hook") and the arguments it was given.
func (f frontFixture) call(t *testing.T, cwd string, args ...string) (string, []string) {
	t.Helper()
	cmd := exec.Command(f.front, args...)
	cmd.Dir = cwd
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("clawos-runc %q: %v %s", args, err, err.(*exec.ExitError).Stderr)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	return lines[0], lines[1:]
}

// TestWrapperFront: where the front sends each call, and what it passes.
func TestWrapperFront(t *testing.T) {
	for _, bin := range fronts(t) {
		t.Run(filepath.Base(bin), func(t *testing.T) { testWrapperFront(t, newFrontFixture(t, bin, "")) })
	}
}

func testWrapperFront(t *testing.T, f frontFixture) {
	b := func(name string) string { return filepath.Join(f.dir, name) }
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"start", []string{"--root", "/r", "--log", "/l.json", "--log-format", "json", "start", "id"}, "runc"},
		{"delete --force", []string{"--root=/r", "delete", "--force", "id"}, "runc"},
		{"delete -f", []string{"delete", "-f", "id"}, "runc"},
		{"kill --all", []string{"kill", "--all", "id", "KILL"}, "runc"},
		{"state, ps, events, pause, resume, list, features", []string{"state", "id"}, "runc"},
		{"ps", []string{"ps", "--format", "json", "id"}, "runc"},
		{"events", []string{"events", "--interval=1s", "--stats", "id"}, "runc"},
		{"list", []string{"-debug", "list", "-q"}, "runc"},
		{"features", []string{"features"}, "runc"},
		{"no command", []string{"--version"}, "runc"},
		{"create without a ClawOS annotation", []string{"create", "--bundle", b("plain"), "--pid-file", "/p", "id"}, "runc"},
		{"run, bundle after the id", []string{"run", "id", "-b=" + b("plain"), "--detach"}, "runc"},
		{"create with io.clawos.whitelist", []string{"create", "--bundle", b("agent"), "id"}, "hook"},
		{"create with whitelist.clawos.io/NAME", []string{"create", "-b", b("named"), "id"}, "hook"},
		{"create with the key spelled with an escape", []string{"create", "--bundle=" + b("escaped"), "id"}, "hook"},
		{"create with CLAWOS anywhere", []string{"create", "--bundle", b("upper"), "id"}, "hook"},
		{"create, config.json a symlink", []string{"create", "--bundle", b("link"), "id"}, "hook"},
		{"create, no config.json", []string{"create", "--bundle", b("none"), "id"}, "hook"},
		{"create, the bundle flag's value missing", []string{"create", "id", "--bundle"}, "hook"},
		{"create, a global flag's value that names a command", []string{"--root", "start", "create", "--bundle", b("agent"), "id"}, "hook"},
		{"start, a global flag's value that names create", []string{"--root", "create", "start", "id"}, "runc"},
		{"exec", []string{"exec", "--process", "/p.json", "id"}, "hook"},
		{"update", []string{"update", "--resources", "-", "id"}, "hook"},
		{"restore", []string{"restore", "--bundle", b("plain"), "id"}, "hook"},
		{"checkpoint", []string{"checkpoint", "id"}, "hook"},
		{"an unknown command", []string{"frobnicate", "id"}, "hook"},
		{"an unknown global flag", []string{"--bogus", "start", "id"}, "hook"},
		{"an unknown flag of start", []string{"start", "--bogus", "id"}, "hook"},
		{"a global flag after the command", []string{"start", "--root", "/r", "id"}, "hook"},
		{"three dashes", []string{"---root", "/r", "start", "id"}, "hook"},
		{"-- before the command", []string{"--", "start", "id"}, "hook"},
		{"-- after it", []string{"start", "id", "--"}, "hook"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, args := f.call(t, f.dir, c.args...)
			if got != c.want {
				t.Fatalf("routed to %s, want %s", got, c.want)
			}
			want := c.args
			if got == "hook" {
				want = append([]string{"runc-wrap", f.front}, c.args...)
			}
			if !slices.Equal(args, want) {
				t.Fatalf("%s got %q, want %q", got, args, want)
			}
		})
	}
	// The bundle runc reads by default is the working directory.
	if got, _ := f.call(t, b("plain"), "create", "id"); got != "runc" {
		t.Errorf("create in an unannotated bundle directory: routed to %s", got)
	}
	if got, _ := f.call(t, b("agent"), "create", "id"); got != "hook" {
		t.Errorf("create in an annotated bundle directory: routed to %s", got)
	}
}

// TestWrapperFrontConfig: a programs file the front does not read exactly
// as the hook does sends every call to the hook (clawos-hook next to the
// wrapper), which reads it again and reports it.
func TestWrapperFrontConfig(t *testing.T) {
	for _, bin := range fronts(t) {
		t.Run(filepath.Base(bin), func(t *testing.T) { testWrapperFrontConfig(t, bin) })
	}
}

func testWrapperFrontConfig(t *testing.T, bin string) {
	for _, c := range []struct {
		name, config, want string
	}{
		{"runc and hook", `{"runc": "@RUNC@", "hook": "@HOOK@"}`, "runc"},
		{"the last one wins, as in Go's decoder", `{"runc": "/nonexistent", "hook": "@HOOK@", "runc": "@RUNC@"}`, "runc"},
		{"empty: the default (clawos-hook next to the wrapper)", `{"runc": "/nonexistent/runc", "hook": ""}`, "hook"},
		{"runc cannot be run: the hook reports it", `{"runc": "/nonexistent/runc", "hook": "@HOOK@"}`, "hook"},
		{"a key in another case", `{"RUNC": "@RUNC@", "hook": "@HOOK@"}`, "hook"},
		{"an escape", `{"runc": "@RUNC@", "hook": "@HOOK@", "x": "\n"}`, "hook"},
		{"not a string", `{"runc": null, "hook": "@HOOK@"}`, "hook"},
		{"not JSON", `{"runc": "@RUNC@", "hook": "@HOOK@",}`, "hook"},
		{"trailing data", `{"runc": "@RUNC@", "hook": "@HOOK@"} {}`, "hook"},
		{"a byte outside ASCII", `{"runc": "@RUNC@", "hook": "@HOOK@", "x": "é"}`, "hook"},
		{"nested values skipped", `{"runc": "@RUNC@", "o": {"a": [1, -2.5e3, true, null, {"b": "c"}]}, "hook": "@HOOK@"}`, "runc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFrontFixture(t, bin, "{}")
			cfg := strings.NewReplacer("@RUNC@", filepath.Join(f.dir, "rec-runc"), "@HOOK@", filepath.Join(f.dir, "rec-hook")).Replace(c.config)
			os.WriteFile(filepath.Join(f.dir, "clawos-runc.json"), []byte(cfg), 0o644)
			if got, _ := f.call(t, f.dir, "start", "id"); got != c.want {
				t.Fatalf("start routed to %s, want %s", got, c.want)
			}
		})
	}
	// Neither program can be run: a P1.7 payload on stderr and a line in
	// runc's --log, exit status 1.
	f := newFrontFixture(t, bin, `{"runc": "/nonexistent/runc", "hook": "/nonexistent/hook"}`)
	os.Remove(filepath.Join(f.dir, "clawos-hook"))
	logFile := filepath.Join(f.dir, "log.json")
	cmd := exec.Command(f.front, "--log", logFile, "start", "id")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, %s", err, out)
	}
	var p struct {
		Code      int    `json:"error_code"`
		Component string `json:"component"`
	}
	if err := json.Unmarshal(out, &p); err != nil || p.Code != 3 || p.Component != "clawos-runc" {
		t.Fatalf("stderr is not a P1.7 E_NOENT payload: %v %s", err, out)
	}
	line, _ := os.ReadFile(logFile)
	var l map[string]string
	if err := json.Unmarshal(line, &l); err != nil || l["level"] != "error" || l["code"] != "ENOENT" || !strings.Contains(l["msg"], "/nonexistent/hook") {
		t.Fatalf("runc's log: %v %s", err, line)
	}
}

// TestWrapperFrontConcerns: on random command lines made of runc's flags,
// commands and values, the front never passes to runc a call that the
// full wrapper's parser (runcargs.Concerns) says concerns ClawOS, and on
// the commands and bundles it decides itself it agrees with it exactly.
func TestWrapperFrontConcerns(t *testing.T) {
	f := newFrontFixture(t, built(t, "../bin/clawos-runc"), "")
	var tokens []string
	for _, cmd := range []string{"", "create", "run", "start", "delete", "kill", "state", "ps", "events", "list", "exec", "update", "restore", "spec"} {
		table, _ := runcargs.RuncFlags(cmd)
		for name, takes := range table {
			tokens = append(tokens, "--"+name, "-"+name)
			if takes {
				tokens = append(tokens, "--"+name+"="+f.dir+"/plain")
			}
		}
		if cmd != "" {
			tokens = append(tokens, cmd, cmd)
		}
	}
	tokens = append(tokens, f.dir+"/plain", f.dir+"/agent", f.dir+"/escaped", "id", "--", "-", "--bogus", "bogus")
	decides := []string{"create", "run", "start", "delete", "kill", "state", "ps", "events", "pause", "resume", "list", "features"}
	r := rand.New(rand.NewPCG(1, 2))
	routed := map[string]int{}
	n := 300
	if testing.Short() {
		n = 60
	}
	for i := 0; i < n; i++ {
		args := make([]string, r.IntN(7))
		for k := range args {
			args[k] = tokens[r.IntN(len(tokens))]
		}
		got, _ := f.call(t, f.dir+"/plain", args...)
		c := runcargs.Parse(args, f.dir+"/plain")
		concerns := runcargs.Concerns(c)
		routed[got]++
		if got == "runc" && concerns {
			t.Fatalf("%q: the front passed to runc a call that concerns ClawOS (%+v)", args, c)
		}
		exact := len(c.Unknown) == 0 && (c.Name == "" || slices.Contains(decides, c.Name)) &&
			!strings.Contains(c.Bundle, "escaped") && !slices.Contains(args, "--") && !strings.HasSuffix(c.Bundle, "/")
		if exact && got == "hook" && !concerns {
			// The front's own doubt where runcargs has none: a flag whose
			// value is missing (the last argument) is the only other.
			if len(args) > 0 && strings.HasPrefix(args[len(args)-1], "-") && !strings.Contains(args[len(args)-1], "=") {
				continue
			}
			t.Errorf("%q: the front sent to the hook a call runcargs passes through (%+v)", args, c)
		}
	}
	// Both ways taken often enough for the comparison to mean something.
	if routed["runc"] < n/10 || routed["hook"] < n/10 {
		t.Fatalf("routed: %v", routed)
	}
	t.Logf("routed: %v", routed)
}
