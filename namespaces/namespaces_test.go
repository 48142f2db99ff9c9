package namespaces_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/internal/golden"
	"github.com/clawos/clawos-security/namespaces"
)

func TestApplyGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    namespaces.Options
	}{
		{"strict-userns-loopback-agents", namespaces.Options{Net: namespaces.NetLoopback, UserNS: true, IDMapBase: 100000, Level: "strict", Slice: "agents.slice",
			HardLimits: map[string]uint64{"RLIMIT_NOFILE": 20000, "RLIMIT_NPROC": 32768}}},
		{"moderate-host-net-no-userns", namespaces.Options{Net: namespaces.NetHost, Level: "moderate", Hostname: "agent-7"}},
		{"permissive-capped-rlimits-v2", namespaces.Options{Net: namespaces.NetNone, UserNS: true, IDMapBase: 200000, Level: "permissive", Slice: "wasm", CgroupV2: true,
			HardLimits: map[string]uint64{"RLIMIT_NOFILE": 1000, "RLIMIT_NPROC": 100}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &specs.Spec{}
			if err := namespaces.Apply(s, tc.o); err != nil {
				t.Fatal(err)
			}
			b, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "apply-"+tc.name+".json", append(b, '\n'))
			// Invariants whatever the options.
			if !s.Process.NoNewPrivileges || !s.Root.Readonly || len(s.Process.Capabilities.Bounding) != 0 || len(s.Process.Capabilities.Effective) != 0 {
				t.Error("no_new_privs, read-only root and no capabilities must always hold")
			}
			for _, r := range s.Process.Rlimits {
				if h, ok := tc.o.HardLimits[r.Type]; ok && r.Hard > h {
					t.Errorf("%s %d exceeds the caller's hard limit %d", r.Type, r.Hard, h)
				}
			}
		})
	}
}

func TestApplyRefusals(t *testing.T) {
	for _, o := range []namespaces.Options{{Level: "lax"}, {Net: "bridge"}, {Slice: "nosuch"}} {
		if err := namespaces.Apply(&specs.Spec{}, o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestSliceResources(t *testing.T) {
	r, err := namespaces.SliceResources("agents", false)
	if err != nil {
		t.Fatal(err)
	}
	// P1.5 agents.slice: memory.max 2G, swap 0, cpu.max 500000/1000000, pids.max 512.
	if *r.Memory.Limit != 2<<30 || *r.Memory.Swap != 2<<30 || *r.CPU.Quota != 500000 || *r.CPU.Period != 1000000 || *r.Pids.Limit != 512 {
		t.Errorf("agents.slice: %+v %+v %+v", r.Memory, r.CPU, r.Pids)
	}
	if r.Unified != nil {
		t.Error("unified resources on a v1 host: runc refuses them")
	}
	if r, _ := namespaces.SliceResources("agents.slice", true); r.Unified["memory.oom.group"] != "1" {
		t.Error("memory.oom.group missing on a v2 host")
	}
	names, err := namespaces.Slices()
	if err != nil || strings.Join(names, ",") != "agents.slice,kernel.slice,root.slice,wasm.slice,worker.slice" {
		t.Errorf("slices %v %v", names, err)
	}
	for _, n := range names {
		if _, err := namespaces.SliceResources(n, false); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

// TestNoIOWeight: where the host cannot weight block IO, Apply and Harden
// leave out the slice's io.weight and keep every other limit.
func TestNoIOWeight(t *testing.T) {
	for _, noIO := range []bool{false, true} {
		applied := specconv.Example()
		if err := namespaces.Apply(applied, namespaces.Options{Slice: "wasm", NoIOWeight: noIO}); err != nil {
			t.Fatal(err)
		}
		hardened := specconv.Example()
		if err := namespaces.Harden(hardened, namespaces.Options{Slice: "wasm", NoIOWeight: noIO}); err != nil {
			t.Fatal(err)
		}
		for name, s := range map[string]*specs.Spec{"Apply": applied, "Harden": hardened} {
			r := s.Linux.Resources
			if (r.BlockIO == nil) != noIO {
				t.Errorf("%s with NoIOWeight %v: block IO %+v", name, noIO, r.BlockIO)
			}
			if r.Memory == nil || r.Pids == nil || r.CPU == nil || len(r.Devices) == 0 {
				t.Errorf("%s with NoIOWeight %v: limits lost: %+v", name, noIO, r)
			}
		}
	}
}

func TestEmbeddedP15IsUpstream(t *testing.T) {
	src, err := os.ReadFile("p15/SOURCE.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("SHA-256 `([0-9a-f]{64})`").FindSubmatch(src)
	b, err := os.ReadFile("p15/quotas.json")
	if err != nil || m == nil {
		t.Fatal("missing P1.5 copy or its recorded digest")
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != string(m[1]) {
		t.Error("p15/quotas.json differs from the recorded upstream copy")
	}
}

// TestMounts builds the default view from a fake host root.
func TestMounts(t *testing.T) {
	host := t.TempDir()
	for _, d := range []string{"usr/bin", "lib64", "etc"} {
		if err := os.MkdirAll(filepath.Join(host, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(host, "bin")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"etc/passwd", "etc/shadow", "etc/hosts"} {
		if err := os.WriteFile(filepath.Join(host, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ms, links, err := namespaces.Mounts(namespaces.View{HostRoot: host, Level: "strict", PrivateNet: true,
		Exec: []string{"/opt/agent/bin/agent"}, Workdir: "/srv/work", Binds: []namespaces.Bind{{Source: "/data", Dest: "/data", ReadOnly: false}}, Tmpfs: []string{"/scratch"}})
	if err != nil {
		t.Fatal(err)
	}
	if links["/bin"] != "usr/bin" {
		t.Errorf("symlinked /bin: %v", links)
	}
	var lines []string
	for _, m := range ms {
		src := strings.Replace(m.Source, host, "HOST", 1)
		lines = append(lines, m.Destination+" "+m.Type+" "+src+" "+strings.Join(m.Options, ","))
	}
	got := strings.Join(lines, "\n") + "\n"
	golden.Check(t, "mounts-default.txt", []byte(got))
	for _, forbidden := range []string{"/etc/shadow", "/root", "/home"} {
		if strings.Contains(got, forbidden+" ") {
			t.Errorf("the default view exposes %s", forbidden)
		}
	}
	if _, _, err := namespaces.Mounts(namespaces.View{Binds: []namespaces.Bind{{Source: "rel", Dest: "/x"}}}); err == nil {
		t.Error("a relative bind source was accepted")
	}
}

func TestParseBind(t *testing.T) {
	b, err := namespaces.ParseBind("/a:/b", true)
	if err != nil || b.Source != "/a" || b.Dest != "/b" || !b.ReadOnly {
		t.Errorf("%+v %v", b, err)
	}
	if b, _ := namespaces.ParseBind("/a", false); b.Dest != "/a" {
		t.Errorf("default destination %+v", b)
	}
	if _, err := namespaces.ParseBind(":/b", false); err == nil {
		t.Error("empty source accepted")
	}
}

func TestNftRuleset(t *testing.T) {
	for _, tc := range []struct {
		name          string
		connect, bind []int
	}{
		{"connect-5432", []int{5432}, nil},
		{"connect-and-bind", []int{443, 5432}, []int{8080}},
		{"none", []int{}, []int{}},
	} {
		rs := namespaces.NftRuleset(tc.connect, tc.bind)
		golden.Check(t, "nft-"+tc.name+".nft", []byte(rs))
		// The real nft program accepts it (syntax check, no kernel change);
		// under CLAWOS_INTEGRATION=1 a missing nft is a failure.
		nft, err := exec.LookPath("nft")
		if err != nil && os.Getenv("CLAWOS_INTEGRATION") != "" {
			t.Fatalf("nft is missing (.ci/setup installs nftables): %v", err)
		}
		if err == nil {
			cmd := exec.Command(nft, "-c", "-f", "-")
			cmd.Stdin = strings.NewReader(rs)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: nft -c: %v %s", tc.name, err, out)
			}
		}
	}
	listing := "table inet clawos {\n chain output {\n  meta l4proto tcp counter packets 3 bytes 180 reject with tcp reset\n  meta l4proto udp counter packets 2 bytes 60 reject\n }\n}\n"
	if n := namespaces.RefusedPackets(listing); n != 5 {
		t.Errorf("RefusedPackets = %d, want 5", n)
	}
}

func TestHarden(t *testing.T) {
	s := specconv.Example()
	netns := specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: "/var/run/netns/engine"}
	s.Linux.Namespaces = []specs.LinuxNamespace{netns, {Type: specs.UserNamespace}}
	s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 20, Soft: 1 << 20}, {Type: "RLIMIT_NPROC", Hard: 100, Soft: 100}}
	if err := namespaces.Harden(s, namespaces.Options{Level: "strict", Slice: "wasm.slice"}); err != nil {
		t.Fatal(err)
	}
	once, _ := json.Marshal(s)
	if err := namespaces.Harden(s, namespaces.Options{Level: "strict", Slice: "wasm.slice"}); err != nil {
		t.Fatal(err)
	}
	twice, _ := json.Marshal(s)
	if string(once) != string(twice) {
		t.Errorf("Harden is not idempotent")
	}
	types := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		types[n.Type] = n.Path
	}
	if types[specs.NetworkNamespace] != netns.Path || len(types) != 7 {
		t.Errorf("namespaces %+v: the engine's must stay, the missing ones added", s.Linux.Namespaces)
	}
	lim := map[string]uint64{}
	for _, r := range s.Process.Rlimits {
		lim[r.Type] = r.Hard
	}
	// Lowered to the level's, never raised; core dumps off.
	if lim["RLIMIT_NOFILE"] != 1024 || lim["RLIMIT_NPROC"] != 100 || lim["RLIMIT_CORE"] != 0 || len(lim) != 3 {
		t.Errorf("rlimits %v", lim)
	}
	if !s.Process.NoNewPrivileges || len(s.Process.Capabilities.Effective) != 0 || !s.Root.Readonly {
		t.Errorf("not hardened")
	}
	if s.Linux.Resources.Pids == nil || *s.Linux.Resources.Pids.Limit != 128 {
		t.Errorf("slice not applied: %+v", s.Linux.Resources)
	}
	tmp := 0
	for _, m := range s.Mounts {
		if m.Destination == "/tmp" {
			tmp++
		}
	}
	if tmp != 1 {
		t.Errorf("%d /tmp mounts", tmp)
	}
}

func TestImplicitWorkdir(t *testing.T) {
	for _, c := range []struct {
		cwd, home string
		ok        bool
	}{
		{"/srv/project", "/home/u", true},
		{"/home/u/project", "/home/u", true},
		{"/", "/home/u", true},
		{"/usr/share", "/home/u", true},
		{"/proc", "/home/u", false},
		{"/proc/1", "/home/u", false},
		{"/etc", "/home/u", false},
		{"/etc/apt", "/home/u", false},
		{"/dev", "/home/u", false},
		{"/run", "/home/u", false},
		{"/run/user/1000", "/home/u", false},
		{"/tmp/x", "/home/u", false},
		{"/sys/fs", "/home/u", false},
		{"/home/u", "/home/u", false},
		{"/home", "/home/u", false},
		{"/root", "/home/u", false},
		{"/root/project", "", true},
		{"/procfs", "/home/u", true},
	} {
		if ok, why := namespaces.ImplicitWorkdir(c.cwd, c.home); ok != c.ok {
			t.Errorf("ImplicitWorkdir(%q, %q) = %v (%s), want %v", c.cwd, c.home, ok, why, c.ok)
		}
	}
}

// TestHostNamespaces checks the comparison by inode of the namespaces a
// config joins with the host's (here: this process's), and the devices
// reset of Harden for a privileged config.
func TestHostNamespaces(t *testing.T) {
	for _, c := range []struct {
		name string
		ns   []specs.LinuxNamespace
		ok   bool
	}{
		{"new namespaces", []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}}, true},
		{"the host's pid namespace by path", []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/proc/self/ns/pid"}}, false},
		{"the host's ipc namespace through another path", []specs.LinuxNamespace{{Type: specs.IPCNamespace, Path: "/proc/thread-self/ns/ipc"}}, false},
		{"the host's uts namespace", []specs.LinuxNamespace{{Type: specs.UTSNamespace, Path: "/proc/self/ns/uts"}}, false},
		{"a path that cannot be compared", []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: "/nonexistent/ns/pid"}}, false},
		{"the host's network namespace (the port policy's concern)", []specs.LinuxNamespace{{Type: specs.NetworkNamespace, Path: "/proc/self/ns/net"}}, true},
	} {
		s := specconv.Example()
		s.Linux.Namespaces = c.ns
		err := namespaces.HostNamespaces(s, "/proc/self/ns")
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
	if err := namespaces.ProcessHostNamespaces(os.Getpid(), "/proc/self/ns"); err == nil {
		t.Error("this process is in the host's namespaces, and ProcessHostNamespaces says it is not")
	}

	s := specconv.Example()
	s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11}}
	s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "rw"}})
	if err := namespaces.Harden(s, namespaces.Options{Level: "strict"}); err != nil {
		t.Fatal(err)
	}
	if s.Linux.Devices != nil || len(s.Linux.Resources.Devices) != 1 || s.Linux.Resources.Devices[0].Allow {
		t.Errorf("a privileged config keeps its devices: %+v %+v", s.Linux.Devices, s.Linux.Resources.Devices)
	}
	for _, m := range s.Mounts {
		if m.Type == "sysfs" && (m.Options[0] != "ro" || strings.Contains(strings.Join(m.Options, ","), "rw")) {
			t.Errorf("sysfs options %v, want read-only", m.Options)
		}
	}
}

func TestClampResources(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	u := func(v uint64) *uint64 { return &v }
	bound := &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(512 << 20), Swap: i(512 << 20)},
		Pids: &specs.LinuxPids{Limit: i(128)}, CPU: &specs.LinuxCPU{Quota: i(50000), Period: u(100000)}}
	for _, c := range []struct {
		name    string
		asked   *specs.LinuxResources
		changed bool
		check   func(r *specs.LinuxResources) bool
	}{
		{"looser memory clamped", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(4 << 30)}}, true,
			func(r *specs.LinuxResources) bool { return *r.Memory.Limit == 512<<20 }},
		{"unlimited memory clamped", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(-1), Swap: i(-1)}}, true,
			func(r *specs.LinuxResources) bool { return *r.Memory.Limit == 512<<20 && *r.Memory.Swap == 512<<20 }},
		{"tighter memory kept", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i(100 << 20)}}, false,
			func(r *specs.LinuxResources) bool { return *r.Memory.Limit == 100<<20 }},
		{"pids clamped", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i(0)}}, true,
			func(r *specs.LinuxResources) bool { return *r.Pids.Limit == 128 }},
		{"cpu quota for another period clamped", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i(400000), Period: u(200000)}}, true,
			func(r *specs.LinuxResources) bool { return *r.CPU.Quota == 100000 && *r.CPU.Period == 200000 }},
		{"cpu shares alone kept", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: func() *uint64 { v := uint64(2048); return &v }()}}, false,
			func(r *specs.LinuxResources) bool { return r.CPU.Quota == nil && *r.CPU.Shares == 2048 }},
	} {
		got, changes := namespaces.ClampResources(c.asked, bound)
		if (len(changes) > 0) != c.changed || !c.check(got) {
			t.Errorf("%s: %+v, changes %v", c.name, got, changes)
		}
	}
}

// TestHostPath: what backs a path of the sandbox's view on the host, for
// finding the command in the sandbox's own view.
func TestHostPath(t *testing.T) {
	v := namespaces.View{HostRoot: "/host", Binds: []namespaces.Bind{
		{Source: "/tmp/x/agent.py", Dest: "/app/agent.py", ReadOnly: true},
		{Source: "/srv/tools", Dest: "/opt/tools", ReadOnly: true},
		{Source: "/srv/other", Dest: "/opt/tools/sub", ReadOnly: true},
		{Source: "/work/ws", Dest: "/usr/local/ws"},
	}}
	for _, tc := range []struct {
		path, want string
		ok         bool
	}{
		{"/usr/bin/python3", "/host/usr/bin/python3", true},
		{"/bin/sh", "/host/bin/sh", true},
		{"/app/agent.py", "/tmp/x/agent.py", true},
		{"/opt/tools/bin/lint", "/srv/tools/bin/lint", true},
		{"/opt/tools/sub/x", "/srv/other/x", true},     // the longest destination
		{"/usr/local/ws/run", "/work/ws/run", true},    // a bind over a system directory wins
		{"/etc/passwd", "/host/etc/passwd", true},      // a curated /etc file
		{"/etc/shadow", "", false},                     // not in the view
		{"/home/user/.pyenv/shims/python3", "", false}, // the host's, not the sandbox's
		{"/application", "", false},                    // a prefix of no destination
	} {
		got, ok := v.HostPath(tc.path)
		if got != tc.want || ok != tc.ok {
			t.Errorf("HostPath(%s) = %q, %v; want %q, %v", tc.path, got, ok, tc.want, tc.ok)
		}
	}
	v.Custom = true
	if _, ok := v.HostPath("/usr/bin/python3"); ok {
		t.Error("a custom root shows no system directory of the host")
	}
}

// TestExecPlaces checks where an agent whose whitelist allows execve may
// execute: the read-only view only, never a writable bind, /tmp or /dev.
func TestExecPlaces(t *testing.T) {
	host := t.TempDir()
	for _, d := range []string{"usr/bin", "lib64", "rootfs/opt", "rootfs/tmp", "rootfs/dev", "rootfs/proc"} {
		if err := os.MkdirAll(filepath.Join(host, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(host, "bin")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/tmp", filepath.Join(host, "rootfs/link")); err != nil {
		t.Fatal(err)
	}
	binds := []namespaces.Bind{{Source: "/a", Dest: "/tools", ReadOnly: true}, {Source: "/b", Dest: "/tools/sub", ReadOnly: true},
		{Source: "/c", Dest: "/ws", ReadOnly: false}}
	many := make([]string, namespaces.MaxExecPlaces)
	for i := range many {
		many[i] = fmt.Sprintf("/x%d", i)
	}
	for _, c := range []struct {
		name  string
		view  namespaces.View
		root  string
		files []string
		want  []string
	}{
		{"default view", namespaces.View{HostRoot: host, Exec: []string{"/opt/agent"}, Binds: binds}, "", []string{"/usr/bin/sh", "/opt/agent"},
			[]string{"/lib64", "/opt/agent", "/tools", "/usr"}},
		{"root filesystem", namespaces.View{Custom: true, Binds: binds}, filepath.Join(host, "rootfs"), []string{"/opt/agent"},
			[]string{"/opt", "/tools"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.view.ExecPlaces(c.root, c.files)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	if _, err := (namespaces.View{HostRoot: host}).ExecPlaces("", many); err == nil {
		t.Errorf("%d places accepted", len(many)+2)
	}
}

// TestNoExecWritable checks that every writable mount, a bundle's own
// included, comes out noexec, and read-only ones are left alone.
func TestNoExecWritable(t *testing.T) {
	ms := []specs.Mount{
		{Destination: "/data", Type: "bind", Options: []string{"rbind", "rw"}},
		{Destination: "/cache", Type: "tmpfs", Options: []string{"nosuid"}},
		{Destination: "/dev/pts", Type: "devpts", Options: []string{"nosuid", "noexec"}},
		{Destination: "/usr", Type: "bind", Options: []string{"rbind", "ro"}},
	}
	namespaces.NoExecWritable(ms)
	want := [][]string{{"rbind", "rw", "noexec", "rnoexec"}, {"nosuid", "noexec"}, {"nosuid", "noexec"}, {"rbind", "ro"}}
	for i, m := range ms {
		if !slices.Equal(m.Options, want[i]) {
			t.Errorf("%s: %v, want %v", m.Destination, m.Options, want[i])
		}
	}
}

// TestWorkspace checks the binds of --workspace: the directory writable,
// its git metadata read-only and idmapped, and the refusals.
func TestWorkspace(t *testing.T) {
	repo, wt, gd, odd := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: "+gd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(gd, filepath.Join(odd, ".git")); err != nil {
		t.Fatal(err)
	}
	plain := t.TempDir()
	for _, c := range []struct {
		dir  string
		want []namespaces.Bind // nil: refused
	}{
		{plain, []namespaces.Bind{{Source: plain, Dest: plain}}},
		{repo, []namespaces.Bind{{Source: repo, Dest: repo}, {Source: repo + "/.git", Dest: repo + "/.git", ReadOnly: true, IDMap: true}}},
		{wt, []namespaces.Bind{{Source: wt, Dest: wt}, {Source: wt + "/.git", Dest: wt + "/.git", ReadOnly: true, IDMap: true}, {Source: gd, Dest: gd, ReadOnly: true, IDMap: true}}},
		{odd, nil}, // .git a symlink: it could not be kept read-only
		{"/proc", nil},
		{"/tmp", nil},
		{"/", nil},
	} {
		got, err := namespaces.Workspace(c.dir)
		switch {
		case c.want == nil && err == nil:
			t.Errorf("%s: accepted: %v", c.dir, got)
		case c.want != nil && err != nil:
			t.Errorf("%s: %v", c.dir, err)
		case c.want != nil && !slices.Equal(got, c.want):
			t.Errorf("%s: %v, want %v", c.dir, got, c.want)
		}
	}
	// The view idmaps writable binds and those marked IDMap, never another
	// read-only bind, mapping each source's owner to the sandbox's root; a
	// writable bind of a root-owned directory is refused (the agent could
	// leave a setuid-root file there).
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	if os.Geteuid() == 0 {
		if err := os.Chown(a, 1000, 1001); err != nil {
			t.Fatal(err)
		}
	}
	uid, gid, _ := namespaces.Owner(a)
	view := func(binds ...namespaces.Bind) namespaces.View {
		return namespaces.View{Custom: true, IDMap: &namespaces.IDMap{HostID: 100000}, Binds: binds}
	}
	ms, _, err := namespaces.Mounts(view(namespaces.Bind{Source: a, Dest: "/a"}, namespaces.Bind{Source: b, Dest: "/b", ReadOnly: true},
		namespaces.Bind{Source: c, Dest: "/c", ReadOnly: true, IDMap: true}))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if want := m.Destination == "/a" || m.Destination == "/c"; (len(m.UIDMappings) == 1 && len(m.GIDMappings) == 1) != want {
			t.Errorf("%s: idmapped %v, want %v", m.Destination, m.UIDMappings, want)
		}
		if m.Destination == "/a" && (m.UIDMappings[0] != specs.LinuxIDMapping{ContainerID: uid, HostID: 100000, Size: 1} ||
			m.GIDMappings[0] != specs.LinuxIDMapping{ContainerID: gid, HostID: 100000, Size: 1}) {
			t.Errorf("/a: %v %v, want its owner %d:%d as the sandbox's root", m.UIDMappings, m.GIDMappings, uid, gid)
		}
	}
	if os.Geteuid() == 0 {
		if _, _, err := namespaces.Mounts(view(namespaces.Bind{Source: b, Dest: "/b"})); err == nil || !strings.Contains(err.Error(), "setuid-root") {
			t.Errorf("a writable bind of a root-owned directory: %v", err)
		}
	}
}
