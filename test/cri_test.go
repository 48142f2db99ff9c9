package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
)

// crictlBin is the CRI client the tests drive containerd with, as a
// kubelet would (built from the Go module proxy by make crictl).
const crictlBin = "/var/cache/clawos-test/v1.37.0/crictl"

// criCluster is a private containerd with the CRI plugin (its own root,
// state, socket and CNI network) and crictl pointed at it: the node side
// of a Kubernetes cluster, without a kubelet.
type criCluster struct {
	f        *engineFixture
	dir      string
	crictl   []string
	logs     string
	pods     int
	pause    string
	image    string
	profiles string // kubelet Localhost seccomp profiles
}

// installHandler runs the node installer (clawos-node install
// --containerd) on a scratch node root holding base as containerd's
// config.toml, and returns the configuration containerd is started with:
// the installed config.toml, its import pointed at the scratch root's
// drop-in, whose handler names this test's wrapper.
func installHandler(t testing.TB, dir, base, wrapper string) string {
	node := filepath.Join(dir, "node")
	os.MkdirAll(filepath.Join(node, "etc/containerd"), 0o755)
	if err := os.WriteFile(filepath.Join(node, "etc/containerd/config.toml"), []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(built(t, "../bin/clawos-node"), "install", "--host", node, "--from", "..", "--containerd").CombinedOutput(); err != nil {
		t.Fatalf("clawos-node install: %v\n%s", err, out)
	}
	drop := filepath.Join(node, "etc/containerd/conf.d/clawos.toml")
	b, err := os.ReadFile(drop)
	if err != nil {
		t.Fatal(err)
	}
	// (TOML literal or basic string, as the encoder chose)
	moved := strings.NewReplacer(strconv.Quote("/usr/local/bin/clawos-runc"), strconv.Quote(wrapper),
		"'/usr/local/bin/clawos-runc'", strconv.Quote(wrapper)).Replace(string(b))
	if moved == string(b) {
		t.Fatalf("the installed drop-in names no /usr/local/bin/clawos-runc:\n%s", b)
	}
	os.WriteFile(drop, []byte(moved), 0o644)
	cfg, err := os.ReadFile(filepath.Join(node, "etc/containerd/config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(cfg), strconv.Quote("/etc/containerd/conf.d/*.toml"), strconv.Quote(filepath.Join(node, "etc/containerd/conf.d/*.toml")), 1)
}

func startCRI(t testing.TB, f *engineFixture) *criCluster {
	t.Helper()
	if _, err := os.Stat(crictlBin); err != nil {
		t.Fatalf("crictl is missing (make crictl builds it into %s): %v", filepath.Dir(crictlBin), err)
	}
	for _, p := range []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s is missing: .ci/setup installs containernetworking-plugins", p)
		}
	}
	c := &criCluster{f: f, dir: f.dir, logs: filepath.Join(f.dir, "pod-logs"), profiles: filepath.Join(f.dir, "seccomp")}
	sock := filepath.Join(f.dir, "cri.sock")
	cniConf := filepath.Join(f.dir, "cni")
	for _, d := range []string{cniConf, c.logs, c.profiles} {
		os.MkdirAll(d, 0o755)
	}
	// The wrapper reads clawos-runc.json next to the path it is called by.
	wrapDir := filepath.Join(f.dir, "wrapper")
	os.MkdirAll(wrapDir, 0o755)
	wrapper := filepath.Join(wrapDir, "clawos-runc")
	if err := os.Symlink(f.wrapper, wrapper); err != nil {
		t.Fatal(err)
	}
	criCfg := f.config()
	criCfg.CRI = true // containerd's CRI handler: pod sandboxes pass through
	cfg, _ := json.Marshal(criCfg)
	os.WriteFile(filepath.Join(wrapDir, "clawos-runc.json"), cfg, 0o644)

	// A bridge network (a loopback-only one does not work here); the
	// bridge plugin turns on ip_forward, restored afterwards.
	fwd, _ := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	t.Cleanup(func() {
		os.WriteFile("/proc/sys/net/ipv4/ip_forward", fwd, 0o644)
		runCmd(t, nil, nil, "ip", "link", "del", "clawos-cni0")
	})
	conflist := filepath.Join(cniConf, "10-clawos-test.conflist")
	writeConflist := func() {
		b, _ := json.Marshal(map[string]any{"cniVersion": "0.4.0", "name": "clawos-test", "plugins": []any{
			map[string]any{"type": "bridge", "bridge": "clawos-cni0", "isGateway": true, "ipMasq": false,
				"ipam": map[string]any{"type": "host-local", "dataDir": filepath.Join(f.dir, "cni-ipam"),
					"ranges": [][]map[string]string{{{"subnet": "10.88.77.0/24"}}}}},
			map[string]any{"type": "loopback"}}})
		os.WriteFile(conflist, b, 0o644)
	}
	writeConflist()

	c.pause, c.image = "localhost/clawos-pause:test", "localhost/clawos-probe:test"
	conf := fmt.Sprintf(`version = 2
root = %q
state = %q
[grpc]
  address = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # root lacks CAP_SYS_RESOURCE here: without this every sandbox fails
  # with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
`, filepath.Join(f.dir, "containerd-root"), filepath.Join(f.dir, "containerd-state"), sock, c.pause, cniConf)
	// The clawos handler as the installer DaemonSet installs it.
	os.WriteFile(filepath.Join(f.dir, "containerd.toml"), []byte(installHandler(t, f.dir, conf, wrapper)), 0o644)
	startContainerdConfig(t, f.dir, sock)
	// containerd 1.6 ignores a conflist that was there before it started
	// until the file is written again.
	writeConflist()
	crictlConf := filepath.Join(f.dir, "crictl.yaml")
	os.WriteFile(crictlConf, []byte(fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", sock, sock)), 0o644)
	c.crictl = []string{"--config", crictlConf}

	// Images: the pause program, and the probe with busybox, imported
	// into containerd's k8s.io namespace.
	pauseTar := filepath.Join(f.dir, "pause.tar")
	if err := writeRootfsTar(pauseTar, map[string]string{"pause": built(t, "../bin/clawos-pause")}); err != nil {
		t.Fatal(err)
	}
	for _, img := range []struct {
		layer, name string
		cmd         []string
	}{
		{pauseTar, c.pause, []string{"/pause"}}, {f.rootfsTar, c.image, []string{"/clawos-probe", "status"}},
	} {
		archive := filepath.Join(f.dir, filepath.Base(img.layer)+".oci")
		if err := writeOCIArchive(archive, img.layer, img.name, img.cmd); err != nil {
			t.Fatal(err)
		}
		if code, out := runCmd(t, nil, nil, "ctr", "-a", sock, "-n", "k8s.io", "images", "import", archive); code != 0 {
			t.Fatalf("ctr images import: %s", out)
		}
	}
	// The pods' cgroup parent (cgroupfs driver), left behind by
	// containerd.
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/clawos-test-pods")
		for _, d := range append(dirs, "/sys/fs/cgroup/clawos-test-pods") {
			unix.Rmdir(d)
		}
	})
	return c
}

// run runs crictl and returns its exit status and combined output.
func (c *criCluster) run(t testing.TB, args ...string) (int, string) {
	t.Helper()
	r := c.exec(t, args...)
	return r.code, r.stdout + r.stderr
}

// must runs crictl and fails the test unless it succeeds; it returns the
// standard output, trimmed.
func (c *criCluster) must(t testing.TB, args ...string) string {
	t.Helper()
	r := c.exec(t, args...)
	if r.code != 0 {
		t.Fatalf("crictl %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

func (c *criCluster) exec(t testing.TB, args ...string) runResult {
	t.Helper()
	return runSplit(t, 90*time.Second, crictlBin, append(append([]string{}, c.crictl...), args...)...)
}

// writeJSON writes v into the test's directory and returns the path.
func (c *criCluster) writeJSON(t testing.TB, name string, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pod is one pod sandbox on a runtime handler.
type pod struct {
	c       *criCluster
	id      string
	config  string
	handler string
	n       int
}

// runp starts a pod sandbox with annotations on handler ("clawos" or
// "runc"), removed at the end of the test.
func (c *criCluster) runp(t testing.TB, handler string, annotations map[string]string) *pod {
	t.Helper()
	return c.runpLinux(t, handler, annotations, nil)
}

// runpLinux is runp with the pod's linux security context (host
// namespaces, privileged).
func (c *criCluster) runpLinux(t testing.TB, handler string, annotations map[string]string, security map[string]any) *pod {
	t.Helper()
	c.pods++
	uid := fmt.Sprintf("pod-%d", c.pods)
	logDir := filepath.Join(c.logs, uid)
	os.MkdirAll(logDir, 0o755)
	cfg := c.writeJSON(t, uid+".json", map[string]any{
		"metadata":      map[string]any{"name": uid, "namespace": "clawos-test", "uid": uid, "attempt": 0},
		"annotations":   annotations,
		"log_directory": logDir,
		"linux":         map[string]any{"cgroup_parent": "/clawos-test-pods", "security_context": security},
	})
	id := c.must(t, "runp", "--runtime", handler, cfg)
	p := &pod{c: c, id: id, config: cfg, handler: handler}
	t.Cleanup(func() { p.remove(t) })
	return p
}

// remove stops and removes the pod (stopp, rmp), as the kubelet does.
func (p *pod) remove(t testing.TB) {
	if p.id == "" {
		return
	}
	p.c.run(t, "stopp", p.id)
	p.c.run(t, "rmp", p.id)
	p.id = ""
}

// container creates a container of the probe image running args, with an
// optional seccomp profile (kubelet Localhost), and returns its id.
func (p *pod) create(t testing.TB, name string, seccompProfile string, args ...string) string {
	t.Helper()
	id, err := p.createSecurity(t, name, seccompProfile, nil, args...)
	if err != "" {
		t.Fatalf("crictl create: %s", err)
	}
	return id
}

// createSecurity is create with more of the container's security context
// (privileged); it returns crictl's error instead of failing the test.
func (p *pod) createSecurity(t testing.TB, name string, seccompProfile string, security map[string]any, args ...string) (string, string) {
	t.Helper()
	p.n++
	linux := map[string]any{}
	sc := map[string]any{}
	for k, v := range security {
		sc[k] = v
	}
	if seccompProfile != "" {
		// ProfileType 2: Localhost.
		sc["seccomp"] = map[string]any{"profile_type": 2, "localhost_ref": seccompProfile}
	}
	if len(sc) > 0 {
		linux["security_context"] = sc
	}
	cfg := p.c.writeJSON(t, fmt.Sprintf("%s-c%d.json", filepath.Base(strings.TrimSuffix(p.config, ".json")), p.n), map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": p.c.image},
		"command":  []string{"/clawos-probe"},
		"args":     args,
		"log_path": fmt.Sprintf("%s-%d.log", name, p.n),
		"linux":    linux,
	})
	code, out := p.c.run(t, "create", p.id, cfg, p.config)
	if code != 0 {
		return "", out
	}
	return strings.TrimSpace(out), ""
}

// runOnce creates and starts a container that runs the probe with args,
// waits for it to exit and returns its exit code and output; a start
// that fails returns -1 and crictl's error.
func (p *pod) runOnce(t testing.TB, name, seccompProfile string, args ...string) (int, string) {
	t.Helper()
	id := p.create(t, name, seccompProfile, args...)
	defer p.c.run(t, "rm", "-f", id)
	if code, out := p.c.run(t, "start", id); code != 0 {
		return -1, out
	}
	code := waitExit(t, p.c, id)
	_, logs := p.c.run(t, "logs", id)
	return code, logs
}

// waitExit waits, bounded, for container id to exit and returns its exit
// code.
func waitExit(t testing.TB, c *criCluster, id string) int {
	t.Helper()
	for i := 0; i < 300; i++ {
		var st struct {
			Status struct {
				State    string `json:"state"`
				ExitCode int    `json:"exitCode"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(c.must(t, "inspect", "-o", "json", id)), &st); err != nil {
			t.Fatal(err)
		}
		if st.Status.State == "CONTAINER_EXITED" {
			return st.Status.ExitCode
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("container %s did not exit", id)
	return 0
}

// initCallsSince returns the names of the calls the kernel logged
// (seccomp SCMP_ACT_LOG, type=1326) for runc's init after the line mark.
func initCallsSince(t *testing.T, mark string) []string {
	t.Helper()
	out, err := exec.Command("dmesg").Output()
	if err != nil {
		t.Fatalf("dmesg: %v", err)
	}
	_, after, ok := strings.Cut(string(out), mark)
	if !ok {
		t.Fatal("the mark is not in the kernel log")
	}
	seen := map[string]bool{}
	var names []string
	re := regexp.MustCompile(`type=1326 .*comm="runc:\[2:INIT\]".* syscall=(\d+) `)
	for _, m := range re.FindAllStringSubmatch(after, -1) {
		nr, _ := strconv.Atoi(m[1])
		name, err := libseccomp.ScmpSyscall(nr).GetName()
		if err != nil {
			name = "nr" + m[1]
		}
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// execStatus is the exit status of the command crictl exec ran: crictl
// itself exits 1 and names the command's status in its message.
func execStatus(code int, out string) int {
	if code == 0 {
		return 0
	}
	if m := regexp.MustCompile(`(?:exited with|exit code) (\d+)`).FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return -1
}

// startContainerdConfig starts containerd with dir/containerd.toml and
// waits for sock.
func startContainerdConfig(t testing.TB, dir, sock string) {
	t.Helper()
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", filepath.Join(dir, "containerd.toml"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// PID 1 here may not reap orphans: stop the daemon by its pid and
	// wait for it; its shims exit with their containers.
	t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		for _, m := range []string{"containerd-state", "containerd-root"} {
			unmountBelow(filepath.Join(dir, m))
		}
		logf.Close()
	})
	for i := 0; i < 100; i++ {
		if code, _ := runCmd(t, nil, nil, "ctr", "-a", sock, "version"); code == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
	t.Fatalf("containerd did not start:\n%s", b)
}

// unmountBelow detaches every mount at or below dir (containerd's shm and
// netns mounts, the state directory).
func unmountBelow(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	for i := len(points) - 1; i >= 0; i-- {
		unix.Unmount(points[i], unix.MNT_DETACH)
	}
}

// probeCase is one run of the probe: its arguments and the exit status
// that proves the verdict.
type probeCase struct {
	name string
	args []string
	code int
}

// coreCases are the verdicts every path that enforces the probe whitelist
// must show: an allowed call, a DENY with EPERM, the kill of an unlisted
// call.
func coreCases(t *testing.T) []probeCase {
	return []probeCase{
		{"allowed getpid", []string{"call", sysnr(t, "getpid")}, 0},
		{"DENY returns EPERM", []string{"call", sysnr(t, "kill"), "1", "0"}, int(unix.EPERM)},
		{"unlisted call kills", []string{"call", sysnr(t, "getuid")}, 128 + int(unix.SIGSYS)},
	}
}

// nftTables lists the nftables tables in the network namespace of pid.
func nftTables(t *testing.T, pid int) string {
	t.Helper()
	code, out := runCmd(t, nil, nil, "nsenter", "--net=/proc/"+strconv.Itoa(pid)+"/ns/net", "nft", "list", "tables")
	if code != 0 {
		t.Fatalf("nft list tables in /proc/%d/ns/net: %s", pid, out)
	}
	return out
}

// pid is the process id crictl inspect (or inspectp, for a pod) reports.
func (c *criCluster) pid(t *testing.T, inspect, id string) int {
	t.Helper()
	var insp struct {
		Info struct {
			Pid int `json:"pid"`
		} `json:"info"`
	}
	if err := json.Unmarshal([]byte(c.must(t, inspect, "-o", "json", id)), &insp); err != nil || insp.Info.Pid <= 0 {
		t.Fatalf("crictl %s %s: no pid (%v)", inspect, id, err)
	}
	return insp.Info.Pid
}

// TestCRI drives containerd's CRI plugin with crictl as a kubelet would:
// pods on the "clawos" handler (the shipped containerd snippet) are
// confined by their annotations, exec'd processes included; other pods and
// the plain runc handler are untouched; a bad whitelist stops the
// container with our message in the CRI error; nothing is left behind.
func TestCRI(t *testing.T) {
	f := newEngineFixture(t, "containerd", "ctr", "runc", "ip", "nsenter", "nft")
	c := startCRI(t, f)
	const killed = 128 + int(unix.SIGSYS)
	agent := c.runp(t, "clawos", map[string]string{"io.clawos.whitelist": "probe"})

	t.Run("sandbox container left as containerd made it", func(t *testing.T) {
		var insp struct {
			Info struct {
				RuntimeSpec struct {
					Process struct {
						Args []string `json:"args"`
					} `json:"process"`
					Linux struct {
						Seccomp any `json:"seccomp"`
					} `json:"linux"`
				} `json:"runtimeSpec"`
			} `json:"info"`
		}
		if err := json.Unmarshal([]byte(c.must(t, "inspectp", "-o", "json", agent.id)), &insp); err != nil {
			t.Fatal(err)
		}
		if a := insp.Info.RuntimeSpec.Process.Args; len(a) != 1 || a[0] != "/pause" {
			t.Errorf("sandbox command %v, want [/pause]", a)
		}
	})
	for _, tc := range append(coreCases(t), []probeCase{
		{"DENY with ENOSYS", []string{"call", sysnr(t, "clone3")}, int(unix.ENOSYS)},
		{"allowed port", []string{"listen-connect", "5432"}, 0},
		{"refused port", []string{"listen-connect", "8080"}, refusedTCP()},
		{"Landlock: exec of another binary", []string{"exec", "/bin/busybox"}, int(unix.EACCES)},
	}...) {
		t.Run("workload: "+tc.name, func(t *testing.T) {
			code, out := agent.runOnce(t, "agent", "", tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s", code, tc.code, out)
			}
		})
	}
	t.Run("workload: status", func(t *testing.T) {
		code, out := agent.runOnce(t, "agent", "", "status")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		for _, want := range []string{"NoNewPrivs:\t1", "CapEff:\t0000000000000000", "Seccomp_filters:\t2"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})

	// crictl exec (ExecSync, and the streaming exec kubectl uses) into a
	// running confined container: runc starts the process without our
	// init, the wrapper routes it through clawos-init.
	t.Run("exec", func(t *testing.T) {
		id := agent.create(t, "waiting", "", "ready")
		defer c.run(t, "rm", "-f", id)
		c.must(t, "start", id)
		for _, tc := range append(coreCases(t), probeCase{"refused port", []string{"listen-connect", "8081"}, refusedTCP()}) {
			for _, mode := range []string{"sync", "stream"} {
				t.Run(mode+": "+tc.name, func(t *testing.T) {
					args := []string{"exec"}
					if mode == "sync" {
						args = append(args, "-s")
					}
					code, out := c.run(t, append(append(args, id, "/clawos-probe"), tc.args...)...)
					code = execStatus(code, out)
					if code != tc.code {
						t.Fatalf("exit %d, want %d\n%s", code, tc.code, out)
					}
				})
			}
		}
		// Its port rules are a table of its own in the pod's namespace.
		if out := nftTables(t, c.pid(t, "inspect", id)); !strings.Contains(out, "table inet clawos-"+id) {
			t.Errorf("no port table clawos-%s in the pod's network namespace:\n%s", id, out)
		}
		code, out := c.run(t, "exec", "-s", id, "/clawos-probe", "status")
		if code != 0 || !strings.Contains(out, "Seccomp_filters:\t2") || !strings.Contains(out, "NoNewPrivs:\t1") ||
			!strings.Contains(out, "CapEff:\t0000000000000000") {
			t.Errorf("exec'd process is not under both filters (exit %d):\n%s", code, out)
		}
		// The security level's rlimits (strict: 1024 files, 512
		// processes, no core) bind the exec'd process as the main one.
		for _, want := range []string{`Max open files\s+1024\s+1024\s`, `Max processes\s+512\s+512\s`, `Max core file size\s+0\s+0\s`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("exec'd process lacks the level's limit %s:\n%s", want, out)
			}
		}
		n := 0
		for _, r := range f.records(t) {
			if r.Stage == "exec" && r.Decision == hook.DecisionApplied && r.Whitelist == "probe" && r.Digest != "" {
				n++
			}
		}
		if n < 9 {
			t.Errorf("%d exec audit records, want one per exec (9)", n)
		}
	})

	// Per-container form: the pod-wide whitelist, overridden for one
	// container by whitelist.clawos.io/NAME.
	t.Run("per-container annotation", func(t *testing.T) {
		p := c.runp(t, "clawos", map[string]string{"io.clawos.whitelist": "probe", "whitelist.clawos.io/strict": "tampered"})
		if code, out := p.runOnce(t, "other", "", "call", sysnr(t, "getuid")); code != killed {
			t.Errorf("container under the pod-wide whitelist: exit %d, want %d\n%s", code, killed, out)
		}
		code, out := p.runOnce(t, "strict", "", "call", sysnr(t, "getpid"))
		if code != -1 || !strings.Contains(out, "signature does not match") {
			t.Errorf("container with a tampered per-container whitelist: exit %d\n%s", code, out)
		}
	})
	t.Run("unannotated pod on the clawos handler: untouched", func(t *testing.T) {
		p := c.runp(t, "clawos", nil)
		if code, out := p.runOnce(t, "free", "", "call", sysnr(t, "getuid")); code != 0 {
			t.Errorf("exit %d\n%s", code, out)
		}
		if code, out := p.runOnce(t, "free", "", "listen-connect", "8080"); code != 0 {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	t.Run("runc handler: untouched", func(t *testing.T) {
		p := c.runp(t, "runc", map[string]string{"io.clawos.whitelist": "probe"})
		if code, out := p.runOnce(t, "plain", "", "call", sysnr(t, "getuid")); code != 0 {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	// The path for clusters that cannot change their runtime: the
	// whitelist as a kubelet Localhost seccomp profile (one stage) on the
	// plain runc handler. Its calls are enforced; its ports are not (see
	// docs/kubernetes.md).
	t.Run("kubelet Localhost profile on the runc handler", func(t *testing.T) {
		prof := filepath.Join(c.profiles, "probe.json")
		cmd := exec.Command(built(t, "../bin/clawos-policy"), "translate", "--format", "kubelet", "-o", prof, probeWhitelist)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("clawos-policy translate --format kubelet: %v\n%s", err, out)
		}
		p := c.runp(t, "runc", nil)
		for _, tc := range append(coreCases(t), probeCase{"ports not enforced on this path", []string{"listen-connect", "8080"}, 0}) {
			if code, out := p.runOnce(t, "kubelet", prof, tc.args...); code != tc.code {
				t.Errorf("%s: exit %d, want %d\n%s", tc.name, code, tc.code, out)
			}
		}
		// crictl exec: runc's exec path under the same single filter.
		id := p.create(t, "kubelet-waiting", prof, "ready")
		defer c.run(t, "rm", "-f", id)
		c.must(t, "start", id)
		if code, out := c.run(t, "exec", "-s", id, "/clawos-probe", "call", sysnr(t, "getpid")); code != 0 {
			t.Errorf("exec getpid: exit %d\n%s", execStatus(code, out), out)
		}
		if code, out := c.run(t, "exec", "-s", id, "/clawos-probe", "call", sysnr(t, "getuid")); execStatus(code, out) != killed {
			t.Errorf("exec getuid: exit %d, want %d\n%s", execStatus(code, out), killed, out)
		}
	})
	// What runc's init calls under the filter on the CRI's paths (the
	// shim's create and start, and exec; without no_new_privs, as a pod
	// that does not set allowPrivilegeEscalation: false) is what the
	// baselines measured on runc directly.
	t.Run("runc's init under the CRI: only measured calls", func(t *testing.T) {
		prof := filepath.Join(c.profiles, "log.json")
		os.WriteFile(prof, []byte(`{"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"]}`), 0o644)
		p := c.runp(t, "runc", nil)
		mark := fmt.Sprintf("clawos-cri-measure-%d", time.Now().UnixNano())
		os.WriteFile("/dev/kmsg", []byte(mark), 0o644)
		if code, out := p.runOnce(t, "measured", prof, "call", sysnr(t, "getpid")); code != 0 {
			t.Fatalf("exit %d\n%s", code, out)
		}
		id := p.create(t, "measured-waiting", prof, "ready")
		defer c.run(t, "rm", "-f", id)
		c.must(t, "start", id)
		c.must(t, "exec", "-s", id, "/clawos-probe", "call", sysnr(t, "getpid"))
		// The kernel writes a logged call's line when the call is made:
		// both paths ran before crictl returned. Read until the exec's
		// lines are there (bounded), no fixed sleep.
		var got []string
		for deadline := time.Now().Add(5 * time.Second); ; {
			got = initCallsSince(t, mark)
			if len(got) > 0 || time.Now().After(deadline) {
				break
			}
			runtime.Gosched()
		}
		if len(got) == 0 {
			t.Fatal("no runc:[2:INIT] call in the kernel log (SCMP_ACT_LOG)")
		}
		measured := map[string]bool{}
		for _, b := range []string{"runtime-runc", "runtime-runc-privs"} {
			calls, err := translate.Baseline(translate.NativeArch(), b)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range calls {
				measured[c.Name] = true
			}
		}
		var missing []string
		for _, name := range got {
			if !measured[name] {
				missing = append(missing, name)
			}
		}
		t.Logf("runc's init under the filter through the CRI: %v", got)
		if len(missing) > 0 {
			t.Errorf("runc's init called %v, which no runtime baseline lists (make baselines)", missing)
		}
	})
	for _, tc := range []struct{ name, wl, want string }{
		{"missing whitelist", "nope", `whitelist "nope" is not in the trusted directory`},
		{"tampered whitelist", "tampered", "signature does not match"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			p := c.runp(t, "clawos", map[string]string{"io.clawos.whitelist": tc.wl})
			code, out := p.runOnce(t, "agent", "", "call", sysnr(t, "getpid"))
			if code != -1 {
				t.Fatalf("the container started (exit %d):\n%s", code, out)
			}
			if !strings.Contains(strings.ReplaceAll(out, `\"`, `"`), tc.want) {
				t.Errorf("the CRI error lacks %q:\n%s", tc.want, out)
			}
		})
	}

	// Host namespaces and privileged pods: a confined container never
	// shares the host's pid, ipc or uts namespace (hostPID, hostIPC: the
	// pod's sandbox is in the host's, and containerd points the containers
	// at it), and never gets the host's devices.
	for _, tc := range []struct {
		name, want string
		ns         map[string]any
	}{
		{"hostPID", "share the host's PID namespace", map[string]any{"pid": 2}},
		{"hostIPC", "share the host's IPC namespace", map[string]any{"ipc": 2}},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			p := c.runpLinux(t, "clawos", map[string]string{"io.clawos.whitelist": "probe"}, map[string]any{"namespace_options": tc.ns})
			id, err := p.createSecurity(t, "agent", "", nil, "call", sysnr(t, "getpid"))
			if err == "" {
				defer c.run(t, "rm", "-f", id)
				code, out := c.run(t, "start", id)
				if code == 0 {
					t.Fatalf("the container started in a %s pod", tc.name)
				}
				err = out
			}
			if !strings.Contains(err, tc.want) {
				t.Errorf("the CRI error lacks %q:\n%s", tc.want, err)
			}
		})
	}
	t.Run("privileged pod: the host's devices are not there", func(t *testing.T) {
		p := c.runpLinux(t, "clawos", map[string]string{"io.clawos.whitelist": "probe"}, map[string]any{"privileged": true})
		for _, dev := range []string{"/dev/loop0", "/dev/loop-control", "/dev/kmsg", "/dev/vda"} {
			id, err := p.createSecurity(t, "agent", "", map[string]any{"privileged": true}, "open", dev, "0")
			if err != "" {
				t.Fatalf("create: %s", err)
			}
			c.must(t, "start", id)
			code := waitExit(t, c, id)
			c.run(t, "rm", "-f", id)
			if code != int(unix.ENOENT) {
				t.Errorf("open %s in a privileged confined container: exit %d, want ENOENT (no such device node)", dev, code)
			}
		}
	})

	// An update (a kubelet in-place resize, containerd's stored spec) never
	// loosens the slice's limits: the wrapper clamps it and audits it.
	t.Run("update: the P1.5 limits hold", func(t *testing.T) {
		p := c.runp(t, "clawos", map[string]string{"io.clawos.whitelist": "probe", "io.clawos.slice": "wasm"})
		id := p.create(t, "agent", "", "ready")
		defer c.run(t, "rm", "-f", id)
		c.must(t, "start", id)
		pid := c.pid(t, "inspect", id)
		memLimit := func() string {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				f := strings.SplitN(l, ":", 3)
				switch {
				case len(f) == 3 && f[1] == "memory":
					v, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", f[2], "memory.limit_in_bytes"))
					return strings.TrimSpace(string(v))
				case len(f) == 3 && f[0] == "0" && f[1] == "" && namespaces.CgroupV2("/sys/fs/cgroup"):
					v, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup", f[2], "memory.max"))
					return strings.TrimSpace(string(v))
				}
			}
			t.Fatal("no memory cgroup")
			return ""
		}
		if got := memLimit(); got != "536870912" {
			t.Fatalf("memory limit at start %s, want the wasm slice's 536870912", got)
		}
		if code, out := c.run(t, "update", "--memory", "4294967296", id); code != 0 {
			t.Logf("crictl update refused: %s", out)
		}
		if got := memLimit(); got != "536870912" {
			t.Errorf("after crictl update --memory 4 GiB the limit is %s, want the slice's 536870912", got)
		}
		found := false
		for _, r := range f.records(t) {
			found = found || (r.Stage == "update" && strings.Contains(strings.Join(r.Notes, " "), "memory.limit"))
		}
		if !found {
			t.Error("no audit record of the clamped update")
		}
	})

	// Every container installed its port rules as a table of its own in
	// the pod's network namespace (shared with its other containers), and
	// poststop removed it when the container went away.
	if out := nftTables(t, c.pid(t, "inspectp", agent.id)); strings.Contains(out, "clawos") {
		t.Errorf("the pod's network namespace still has port tables after its containers are gone:\n%s", out)
	}

	// Nothing left behind after stopp/rmp.
	agent.remove(t)
	for _, what := range []string{"ps", "pods"} {
		if out := c.must(t, what, "-q"); out != "" {
			t.Errorf("crictl %s still lists: %s", what, out)
		}
	}
	f.noState(t)
}
