package runcargs

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		args []string
		want Command
	}{
		{[]string{"--root", "/run/c", "--log", "/l.json", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/p", "id1"},
			Command{Name: "create", Bundle: "/b", Log: "/l.json", ID: "id1", Root: "/run/c", IDIndex: 11, PidFile: "/p",
				Globals: []string{"--root", "/run/c", "--log", "/l.json", "--log-format", "json"}}},
		{[]string{"--systemd-cgroup", "create", "-b=rel", "--console-socket", "/s", "id2"},
			Command{Name: "create", Bundle: "/cwd/rel", ID: "id2", Root: "/run/runc", IDIndex: 5, Globals: []string{"--systemd-cgroup"}}},
		{[]string{"--log=/x", "start", "id3"}, Command{Name: "start", Bundle: "/cwd", Log: "/x", ID: "id3", Root: "/run/runc", IDIndex: 2, Globals: []string{"--log=/x"}}},
		{[]string{"exec", "--process", "p.json", "--detach", "id4"},
			Command{Name: "exec", Bundle: "/cwd", ID: "id4", Root: "/run/runc", Process: "/cwd/p.json", IDIndex: 4}},
		{[]string{"exec", "--cap", "CAP_SYS_ADMIN", "-t", "id4", "sh", "-c", "--cap"},
			Command{Name: "exec", Bundle: "/cwd", ID: "id4", Root: "/run/runc", IDIndex: 4, Widening: []string{"--cap"}}},
		{[]string{"--debug", "delete", "--force", "id5"}, Command{Name: "delete", Bundle: "/cwd", ID: "id5", Root: "/run/runc", IDIndex: 3, Globals: []string{"--debug"}}},
		{[]string{"run", "id6"}, Command{Name: "run", Bundle: "/cwd", ID: "id6", Root: "/run/runc", IDIndex: 1}},
	} {
		if got := Parse(c.args, "/cwd"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: got %+v, want %+v", c.args, got, c.want)
		}
	}
}

func TestRequested(t *testing.T) {
	for _, c := range []struct {
		name      string
		ann       map[string]string
		whitelist string
		key       string
		baseline  string
		sandbox   bool
	}{
		{"pod-wide", map[string]string{AnnotationWhitelist: "a"}, "a", AnnotationWhitelist, "", false},
		{"per-container wins", map[string]string{AnnotationWhitelist: "a", AnnotationCRIContainerName: "web",
			ContainerWhitelistPrefix + "web": "b", ContainerBaselinePrefix + "web": "tokio"}, "b", ContainerWhitelistPrefix + "web", "tokio", false},
		{"another container's form does not apply", map[string]string{AnnotationWhitelist: "a", AnnotationCRIContainerName: "db",
			ContainerWhitelistPrefix + "web": "b"}, "a", AnnotationWhitelist, "", false},
		{"per-container only", map[string]string{AnnotationCRIContainerName: "web", ContainerWhitelistPrefix + "web": "b"},
			"b", ContainerWhitelistPrefix + "web", "", false},
		{"sandbox marker: read, the whitelist too (the entry point decides)", map[string]string{AnnotationWhitelist: "a", AnnotationCRIContainerType: CRISandbox}, "a", AnnotationWhitelist, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := Requested(c.ann)
			if r.Whitelist != c.whitelist || r.WhitelistKey != c.key || r.Baseline != c.baseline || r.Sandbox != c.sandbox {
				t.Errorf("got %+v", r)
			}
		})
	}
}

func TestConcerns(t *testing.T) {
	dir := t.TempDir()
	bundle := func(name, annotations string) string {
		b := filepath.Join(dir, name)
		os.MkdirAll(b, 0o755)
		os.WriteFile(filepath.Join(b, "config.json"), []byte(`{"ociVersion": "1.0.2", "annotations": `+annotations+`}`), 0o644)
		return b
	}
	root := filepath.Join(dir, "root")
	state := func(id, bundle string) {
		os.MkdirAll(filepath.Join(root, id), 0o700)
		os.WriteFile(filepath.Join(root, id, "state.json"), []byte(`{"config": {"labels": ["bundle=`+bundle+`"]}}`), 0o600)
	}
	state("confined", bundle("confined", `{"io.clawos.whitelist": "a", "io.clawos.agent-profile-digest": "sha256:x"}`))
	state("plain", bundle("plain", `{"io.clawos.whitelist": "a"}`))
	for _, c := range []struct {
		name string
		cmd  Command
		want bool
	}{
		{"create annotated", Command{Name: "create", Bundle: bundle("a", `{"io.clawos.whitelist": "a"}`)}, true},
		{"create empty name", Command{Name: "create", Bundle: bundle("e", `{"io.clawos.whitelist": ""}`)}, true},
		{"create per-container", Command{Name: "create", Bundle: bundle("p", `{"io.kubernetes.cri.container-name": "w", "whitelist.clawos.io/w": "a"}`)}, true},
		{"create unannotated", Command{Name: "create", Bundle: bundle("u", `{}`)}, false},
		{"create sandbox with a whitelist: the full path decides", Command{Name: "create", Bundle: bundle("s", `{"io.clawos.whitelist": "a", "io.kubernetes.cri.container-type": "sandbox"}`)}, true},
		{"create sandbox without a whitelist", Command{Name: "create", Bundle: bundle("s2", `{"io.kubernetes.cri.container-type": "sandbox"}`)}, false},
		{"create unreadable", Command{Name: "create", Bundle: filepath.Join(dir, "missing")}, true},
		{"create malformed", Command{Name: "run", Bundle: bundle("m", `[`)}, true},
		{"exec confined", Command{Name: "exec", Root: root, ID: "confined"}, true},
		{"exec not confined", Command{Name: "exec", Root: root, ID: "plain"}, false},
		{"exec unknown", Command{Name: "exec", Root: root, ID: "nope"}, true},
		{"start", Command{Name: "start", ID: "confined"}, false},
		{"delete", Command{Name: "delete", ID: "confined"}, false},
	} {
		if got := Concerns(c.cmd); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"abc": true, "a.b_c-d": true, "0": true, "": false, ".a": false, "-a": false, "a/b": false,
		"../a": false, "a b": false, string(make([]byte, 257)): false, "a" + string(bytesOf('b', 255)): true, "a" + string(bytesOf('b', 256)): false,
	} {
		if got := ValidID(id); got != want {
			t.Errorf("ValidID(%.20q) = %v, want %v", id, got, want)
		}
	}
}

func bytesOf(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// TestParseForms checks that the parser reads every form runc accepts: one
// dash or two, "=value" or the next argument, command flags after the
// container id (runc's parser moves them ahead), and that what runc would
// not read as we do is listed as unknown rather than guessed at.
func TestParseForms(t *testing.T) {
	for _, c := range []struct {
		args    []string
		bundle  string
		process string
		id      string
		unknown bool
	}{
		{[]string{"create", "-bundle", "/b", "id"}, "/b", "", "id", false},
		{[]string{"create", "-bundle=/b", "id"}, "/b", "", "id", false},
		{[]string{"create", "--bundle=/b", "id"}, "/b", "", "id", false},
		{[]string{"create", "-b", "/b", "id"}, "/b", "", "id", false},
		{[]string{"create", "id", "--bundle", "/b"}, "/b", "", "id", false},
		{[]string{"run", "-bundle", "/b", "-d", "id"}, "/b", "", "id", false},
		{[]string{"exec", "-process", "/p.json", "id"}, "/cwd", "/p.json", "id", false},
		{[]string{"exec", "-p=/p.json", "id"}, "/cwd", "/p.json", "id", false},
		{[]string{"exec", "--cgroup", "sub", "id", "sh"}, "/cwd", "", "id", false},
		{[]string{"exec", "-cgroup=cpu:sub", "-t", "id", "sh", "--bogus"}, "/cwd", "", "id", false},
		{[]string{"-root", "/r", "-log=/l", "create", "id"}, "/cwd", "", "id", false},
		{[]string{"--bogus", "create", "id"}, "/cwd", "", "id", true},
		{[]string{"create", "--bogus", "id"}, "/cwd", "", "id", true},
		{[]string{"create", "id", "--bogus=1"}, "/cwd", "", "id", true},
		{[]string{"exec", "--bogus", "id", "sh"}, "/cwd", "", "id", true},
		{[]string{"frobnicate", "id"}, "/cwd", "", "id", true},
		{[]string{"create", "--root", "/r", "id"}, "/cwd", "", "/r", true}, // a global flag after the command: unknown, and its arity too
	} {
		got := Parse(c.args, "/cwd")
		if got.Bundle != c.bundle || got.Process != c.process || got.ID != c.id || (len(got.Unknown) > 0) != c.unknown {
			t.Errorf("%v: %+v; want bundle %s process %s id %s unknown %v", c.args, got, c.bundle, c.process, c.id, c.unknown)
		}
		if c.unknown && !Concerns(got) {
			t.Errorf("%v: an unknown flag passes through", c.args)
		}
	}
	// What the wrapper needs to finish a create itself and, on failure,
	// delete the container with the same state: --pid-file (absolute) and
	// the global flags.
	for _, c := range []struct {
		args    []string
		pidFile string
		globals []string
	}{
		{[]string{"--root", "/r", "--log", "/l", "--log-format", "json", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "id"}, "/b/init.pid", []string{"--root", "/r", "--log", "/l", "--log-format", "json"}},
		{[]string{"--systemd-cgroup", "create", "-pid-file=p", "id"}, "/cwd/p", []string{"--systemd-cgroup"}},
		{[]string{"create", "id"}, "", []string{}},
		{[]string{"exec", "--pid-file", "/p", "id", "sh"}, "", []string{}},
	} {
		got := Parse(c.args, "/cwd")
		if got.PidFile != c.pidFile || !slices.Equal(got.Globals, c.globals) {
			t.Errorf("%v: pid file %q, globals %q; want %q, %q", c.args, got.PidFile, got.Globals, c.pidFile, c.globals)
		}
	}
}

// TestFlagTable checks the parser's table against the installed runc's
// own flag definitions (its --help): every command runc lists is known,
// and every flag of every command, in each of its names, is in the table
// with the right arity. With CLAWOS_INTEGRATION=1 a missing runc fails.
func TestFlagTable(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		if os.Getenv("CLAWOS_INTEGRATION") != "" {
			t.Fatalf("runc is missing: %v", err)
		}
		t.Skip("runc is not installed")
	}
	help := func(args ...string) string {
		out, _ := exec.Command(runc, append(args, "--help")...).Output()
		return string(out)
	}
	section := func(text, title string) []string {
		var lines []string
		in := false
		for _, l := range strings.Split(text, "\n") {
			switch {
			case strings.HasSuffix(l, ":") && !strings.HasPrefix(l, " "):
				in = l == title+":"
			case in && strings.TrimSpace(l) != "":
				lines = append(lines, strings.TrimSpace(l))
			}
		}
		return lines
	}
	flagRe := regexp.MustCompile(`^(-{1,2}[a-z0-9-]+)( value)?`)
	check := func(cmd string, lines []string) {
		table, ok := RuncFlags(cmd)
		if !ok {
			t.Errorf("runc has the command %q, which the parser does not know", cmd)
			return
		}
		for _, l := range lines {
			desc, _, _ := strings.Cut(l, "  ") // names end where the description begins
			for _, form := range strings.Split(desc, ", ") {
				m := flagRe.FindStringSubmatch(form)
				if m == nil {
					continue
				}
				name := strings.TrimLeft(m[1], "-")
				takes, known := table[name]
				if !known {
					t.Errorf("runc %s has the flag %s, which the parser does not know", cmd, m[1])
					continue
				}
				if takes != (m[2] != "") {
					t.Errorf("runc %s %s: takes a value %v, the parser says %v", cmd, m[1], m[2] != "", takes)
				}
			}
		}
	}
	top := help()
	check("", section(top, "GLOBAL OPTIONS"))
	commands := section(top, "COMMANDS")
	if len(commands) < 15 {
		t.Fatalf("runc --help lists %d commands; the help format changed:\n%s", len(commands), top)
	}
	for _, l := range commands {
		cmd := strings.Fields(l)[0]
		cmd = strings.TrimSuffix(cmd, ",")
		if cmd == "help" {
			continue
		}
		check(cmd, section(help(cmd), "OPTIONS"))
	}
}

func TestSetValue(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{[]string{"update", "--resources", "/f", "id"}, []string{"update", "--resources=-", "id"}},
		{[]string{"update", "-r=/f", "id"}, []string{"update", "--resources=-", "id"}},
		{[]string{"update", "id", "-resources", "-"}, []string{"update", "id", "--resources=-"}},
		{[]string{"update", "--memory", "5", "id"}, []string{"update", "--memory", "5", "id"}},
	} {
		if got := SetValue(c.in, []string{"resources", "r"}, "-"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: %v, want %v", c.in, got, c.want)
		}
	}
}
