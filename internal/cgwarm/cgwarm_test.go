package cgwarm

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestProcs(t *testing.T) {
	const root = "/sys/fs/cgroup"
	hybrid := "12:pids:/user.slice\n4:cpu,cpuacct:/a\n1:name=systemd:/user.slice/s.scope\n0::/user.slice/s.scope\n"
	for _, tc := range []struct {
		name       string
		membership string
		mounted    map[string]bool // dir -> v2
		want       string
	}{
		{"v2", "0::/system.slice/x.service\n", map[string]bool{root: true}, root + "/system.slice/x.service/cgroup.procs"},
		{"v2 root cgroup", "0::/\n", map[string]bool{root: true}, root + "/cgroup.procs"},
		{"hybrid", hybrid, map[string]bool{root + "/unified": true, root + "/pids": false, root + "/cpu,cpuacct": false}, root + "/unified/user.slice/s.scope/cgroup.procs"},
		{"v1 only", hybrid, map[string]bool{root + "/pids": false, root + "/cpu,cpuacct": false}, root + "/pids/user.slice/cgroup.procs"},
		{"v1, first hierarchy not mounted", hybrid, map[string]bool{root + "/cpu,cpuacct": false}, root + "/cpu,cpuacct/a/cgroup.procs"},
		{"named hierarchies are not used", "1:name=systemd:/s\n", map[string]bool{root + "/name=systemd": false}, ""},
		{"a path that climbs is not used", "0::/../../etc\n", map[string]bool{root: true}, ""},
		{"a relative path is not used", "0::x\n", map[string]bool{root: true}, ""},
		{"nothing mounted", hybrid, nil, ""},
		{"garbage", "no colons here\n", map[string]bool{root: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Procs(root, []byte(tc.membership), func(dir string, v2 bool) bool {
				isV2, ok := tc.mounted[dir]
				return ok && isV2 == v2
			})
			if tc.want == "" {
				if err == nil {
					t.Fatalf("Procs = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Procs = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

const childEnv = "CGWARM_TEST_CHILD"

// TestWarmStaysInItsCgroup runs Warm in a process that lives in a cgroup
// of its own (created for the test, the process cloned into it) and checks
// in the kernel that the process is still there afterwards: Warm writes to
// the cgroup the process is in, never to another (the hierarchy's root,
// where a wrong path would have moved it).
func TestWarmStaysInItsCgroup(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		if err := Warm(Root, "/proc/self/cgroup"); err != nil {
			fmt.Fprintln(os.Stderr, "warm:", err)
			os.Exit(1)
		}
		b, _ := os.ReadFile("/proc/self/cgroup")
		os.Stdout.Write(b)
		os.Exit(0)
	}
	dir := testCgroup(t)
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command(os.Args[0], "-test.run", "^TestWarmStaysInItsCgroup$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	want := "0::/" + filepath.Base(dir) + "\n"
	if !strings.Contains(string(out), want) {
		t.Fatalf("after Warm the process's cgroups are\n%s\nwant the line %q", out, want)
	}
}

// testCgroup makes a cgroup of the unified hierarchy for the test, removed
// after it.
func testCgroup(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CLAWOS_INTEGRATION") != "" {
			t.Fatal("needs root (CLAWOS_INTEGRATION=1)")
		}
		t.Skip("needs root")
	}
	unified := ""
	for _, dir := range []string{Root, filepath.Join(Root, "unified")} {
		if isCgroupFS(dir, true) {
			unified = dir
			break
		}
	}
	if unified == "" {
		// A host without a unified hierarchy: Warm uses a v1 one, which
		// TestProcs covers; a process cannot be cloned into a v1 cgroup.
		t.Skip("no cgroup v2 hierarchy (v1 only)")
	}
	dir := filepath.Join(unified, fmt.Sprintf("clawos-cgwarm-test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

// TestWarmRefusesAnotherCgroup gives Warm a membership that names another
// cgroup than the process's (as a cgroup file system mounted from another
// root would): Warm must not write, and the process must not move.
func TestWarmRefusesAnotherCgroup(t *testing.T) {
	dir := testCgroup(t)
	before, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	membership := filepath.Join(t.TempDir(), "cgroup")
	if err := os.WriteFile(membership, []byte("0::/"+filepath.Base(dir)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Warm(Root, membership); err == nil || !strings.Contains(err.Error(), "does not list this process") {
		t.Fatalf("Warm = %v, want a refusal", err)
	}
	after, _ := os.ReadFile("/proc/self/cgroup")
	procs, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if string(after) != string(before) || len(procs) != 0 {
		t.Fatalf("the process moved: cgroups %q -> %q, the other cgroup's processes %q", before, after, procs)
	}
}

func TestLists(t *testing.T) {
	for _, tc := range []struct {
		procs, pid string
		want       bool
	}{
		{"1\n42\n", "42", true},
		{"1\n420\n", "42", false},
		{"142\n", "42", false},
		{"", "42", false},
		{"42", "42", true},
	} {
		if got := lists([]byte(tc.procs), tc.pid); got != tc.want {
			t.Errorf("lists(%q, %q) = %v", tc.procs, tc.pid, got)
		}
	}
}
