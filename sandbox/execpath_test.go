package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

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
