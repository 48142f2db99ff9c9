package sandbox

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/namespaces"
)

// TestResolveInView: the command is found as the sandbox sees it, in its
// PATH and through its binds, never through the caller's PATH.
func TestResolveInView(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root") // the host's system directories, for the view
	write := func(p, content string, mode os.FileMode) string {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	static, err := os.ReadFile("../bin/clawos-probe") // a static ELF: no interpreter
	if err != nil {
		t.Fatalf("%v: make build first", err)
	}
	write(filepath.Join(root, "usr/bin/sh"), string(static), 0o755)
	write(filepath.Join(root, "usr/bin/tool"), "#!/usr/bin/sh\n", 0o755)
	write(filepath.Join(root, "usr/bin/data"), "not executable\n", 0o644)
	agent := write(filepath.Join(dir, "x/agent.py"), "#!/usr/bin/sh\n", 0o755)
	hostOnly := write(filepath.Join(dir, "shims/python3"), "#!/usr/bin/sh\n", 0o755)
	outside := write(filepath.Join(dir, "opt/agent"), string(static), 0o755)
	t.Setenv("PATH", filepath.Dir(hostOnly)+":"+os.Getenv("PATH")) // a host shim first, as pyenv's

	v := namespaces.View{HostRoot: root, Binds: []namespaces.Bind{{Source: agent, Dest: "/app/agent.py", ReadOnly: true}}}
	for _, tc := range []struct {
		name, path, cmd string
		want            string
		files, mounts   []string
		notFound        bool
	}{
		{"bare name in the sandbox's PATH", defaultPATH, "tool", "/usr/bin/tool", []string{"/usr/bin/tool", "/usr/bin/sh"}, nil, false},
		{"a file that is not executable is skipped", defaultPATH, "data", "", nil, nil, true},
		{"a host shim is not the sandbox's", defaultPATH, "python3", "", nil, nil, true},
		{"through a bind", defaultPATH, "/app/agent.py", "/app/agent.py", []string{"/app/agent.py", "/usr/bin/sh"}, nil, false},
		{"the sandbox's PATH from --env", "/app", "agent.py", "/app/agent.py", []string{"/app/agent.py", "/usr/bin/sh"}, nil, false},
		{"a host path outside the view is mounted", defaultPATH, outside, outside, []string{outside}, []string{outside}, false},
		{"a missing path", defaultPATH, "/usr/bin/none", "", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, files, mounts, err := resolveInView(v, tc.path, tc.cmd)
			if tc.notFound {
				var ce *clawerr.Error
				if !errors.As(err, &ce) || ce.Code != clawerr.ENoEnt {
					t.Fatalf("%q: %v, want ENOENT", tc.cmd, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || !slices.Equal(files, tc.files) || !slices.Equal(mounts, tc.mounts) {
				t.Errorf("%q: %s %v mounts %v; want %s %v mounts %v", tc.cmd, got, files, mounts, tc.want, tc.files, tc.mounts)
			}
		})
	}
}

func TestSandboxPATH(t *testing.T) {
	if got := sandboxPATH(nil); got != defaultPATH {
		t.Errorf("default: %s", got)
	}
	if got := sandboxPATH([]string{"A=1", "PATH=/a", "PATH=/b:/c"}); got != "/b:/c" {
		t.Errorf("--env PATH: %s (the last one counts)", got)
	}
}

// TestResolversAgree is the differential test of the two command
// resolvers: clawos-run's (Go, outside the sandbox, whose results
// clawos-init receives as --exec) and clawos-init's own (C, --exec-cmd,
// which the hook uses because a container's view, its volumes and the
// engine's mounts, exists only inside it). On every command both give the
// same chain of files execve opens (compared by inode: one reports paths
// as given, the other after symlinks), or both refuse it.
func TestResolversAgree(t *testing.T) {
	cResolver := "../bin/init-resolve"
	if _, err := os.Stat(cResolver); err != nil {
		t.Fatalf("%v: make build first", err)
	}
	static, err := os.ReadFile("../bin/clawos-probe")
	if err != nil {
		t.Fatalf("%v: make build first", err)
	}
	dir := t.TempDir()
	files := map[string]string{
		"static":     string(static),
		"script-elf": "#!/usr/bin/true\n",
		"env-script": "#!/usr/bin/env sh\necho\n",
		"tabs":       "#!\t /usr/bin/true  -x\n",
		"two":        "#!" + filepath.Join(dir, "script-elf") + "\n",
		"to-static":  "#!" + filepath.Join(dir, "static") + " arg\n",
		"cycle-a":    "#!" + filepath.Join(dir, "cycle-b") + "\n",
		"cycle-b":    "#!" + filepath.Join(dir, "cycle-a") + "\n",
		"dangling":   "#!" + filepath.Join(dir, "missing") + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/usr/bin/true", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	cmds := []string{"true", "env", "/usr/bin/true", "/usr/bin/env", "no-such-command"}
	for _, name := range []string{"static", "script-elf", "env-script", "tabs", "two", "to-static", "cycle-a", "dangling", "link", "missing"} {
		cmds = append(cmds, filepath.Join(dir, name))
	}
	const path = "/usr/local/bin:/usr/bin:/bin"
	cmd := exec.Command(cResolver, cmds...)
	cmd.Env = []string{"PATH=" + path}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", cResolver, err)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(cmds) {
		t.Fatalf("%d lines for %d commands: %q", len(lines), len(cmds), out)
	}
	inodes := func(paths []string) ([]uint64, error) {
		var out []uint64
		for _, p := range paths {
			var st unix.Stat_t
			if err := unix.Stat(p, &st); err != nil {
				return nil, err
			}
			out = append(out, st.Ino)
		}
		return out, nil
	}
	for i, c := range cmds {
		_, goFiles, _, goErr := resolveInView(namespaces.View{}, path, c)
		cRefused := lines[i] == "error"
		if (goErr != nil) != cRefused {
			t.Errorf("%s: Go %v %v, C %q: one refuses, the other not", c, goFiles, goErr, lines[i])
			continue
		}
		if cRefused {
			continue
		}
		g, err := inodes(goFiles)
		if err != nil {
			t.Fatal(err)
		}
		cc, err := inodes(strings.Split(lines[i], "\t"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(g, cc) {
			t.Errorf("%s: Go %v, C %q", c, goFiles, lines[i])
		}
	}
}
