package test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/internal/cgwarm"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// BenchmarkStart measures start-to-exit of /usr/bin/true under clawos-run
// (reference whitelist, start baseline, port rules, two filters, Landlock)
// against bare `runc run` of the bundle clawos-run writes for the same
// command, without its filter and init, clawos-run --init against
// clawos-run, and bubblewrap with equivalent confinement where it is
// installed, and bare runc again, started as the benchmark makes the
// early cgroup write clawos-run makes at its start (sandbox.WarmCgroups;
// ratio-warmed-runc: what the rest of clawos-run costs against runc given
// the same write). Runs alternate, so drift hits all; medians are reported
// (and the ratio of means, mean-ratio).
func BenchmarkStart(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root, runc and %s=1", integrationEnv)
	}
	run, err := filepath.Abs("../bin/clawos-run")
	if err != nil {
		b.Fatal(err)
	}
	state := "/run/clawos-bench"
	// Under the state directory (0755): the sandbox's mapped root must be
	// able to traverse the bundle's path, which a 0700 temporary directory
	// forbids.
	bundle := filepath.Join(state, "bench-bundle")
	os.RemoveAll(bundle)
	defer os.RemoveAll(bundle)
	wl := "../examples/ironclaw.whitelist.json"
	bareBundle(b, run, state, bundle, wl, "/usr/bin/true")
	timeIt := func(name string, args ...string) time.Duration {
		start := time.Now()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v %s", name, args, err, out)
		}
		return time.Since(start)
	}
	// bubblewrap with equivalent confinement, where it is installed: the
	// same namespaces, read-only /usr, /proc, /dev, tmpfs /tmp and the
	// agent stage's BPF (the reference whitelist with the start baseline).
	var bwrap []string
	if bw, err := exec.LookPath("bwrap"); err == nil {
		bpf := filepath.Join(b.TempDir(), "agent.bpf")
		policy := filepath.Join(filepath.Dir(run), "clawos-policy")
		if out, err := exec.Command(policy, "compile", "--baseline", "start", "-o", bpf, wl).CombinedOutput(); err != nil {
			b.Fatalf("compile: %v %s", err, out)
		}
		bwrap = []string{"sh", "-c", `exec "$0" "$@" 3<` + bpf, bw, "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1",
			"--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
			"--symlink", "usr/sbin", "/sbin", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--seccomp", "3", "/usr/bin/true"}
	}
	// Medians of the runs, as the engine benchmarks report: a run's
	// first cgroup v1 join waits for an RCU grace period (0-10 ms here,
	// runc's and clawos-run's alike), which a mean of 30 does not average
	// away.
	// Debian's runc is 1.1, an older libcontainer than the one clawos-run
	// embeds; runc of the embedded version, where make runc-libcontainer
	// built it, is the anchor for the same container code.
	runcLC := runcLibcontainer(b)
	var bare, bareWarm, bareLC, claw, init, cold, bw []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bwrap != nil {
			bw = append(bw, timeIt(bwrap[0], bwrap[1:]...))
		}
		if runcLC != "" {
			bareLC = append(bareLC, timeIt(runcLC, "--root", filepath.Join(state, "runc-lc"), "run", "--bundle", bundle, fmt.Sprintf("bench-lc-%d-%d", os.Getpid(), i)))
		}
		bare = append(bare, timeIt("runc", "--root", filepath.Join(state, "runc-bare"), "run", "--bundle", bundle, fmt.Sprintf("bench-%d-%d", os.Getpid(), i)))
		// runc after the write that clawos-run makes at its start
		// (sandbox.WarmCgroups), made here as runc starts: how much of
		// the difference that write is.
		go cgwarm.Warm(cgwarm.Root, "/proc/self/cgroup")
		bareWarm = append(bareWarm, timeIt("runc", "--root", filepath.Join(state, "runc-bare"), "run", "--bundle", bundle, fmt.Sprintf("bench-w-%d-%d", os.Getpid(), i)))
		claw = append(claw, timeIt(run, "--state-dir", state, "--whitelist", wl, "--", "/usr/bin/true"))
		init = append(init, timeIt(run, "--state-dir", state, "--init", "--whitelist", wl, "--", "/usr/bin/true"))
		// A plan-cache miss every time: clawos-policy validates.
		cold = append(cold, timeIt(run, "--state-dir", state, "--plan-cache", "off", "--whitelist", wl, "--", "/usr/bin/true"))
	}
	b.StopTimer()
	mean := func(d []time.Duration) float64 {
		var sum time.Duration
		for _, x := range d {
			sum += x
		}
		return float64(sum.Microseconds()) / float64(len(d))
	}
	ratio := func(a, b []time.Duration) float64 { return float64(median(a)) / float64(median(b)) }
	b.ReportMetric(float64(median(bare).Microseconds()), "bare-runc-µs")
	b.ReportMetric(float64(median(claw).Microseconds()), "clawos-run-µs")
	b.ReportMetric(ratio(claw, bare), "ratio")
	b.ReportMetric(mean(claw)/mean(bare), "mean-ratio")
	b.ReportMetric(float64(median(bareWarm).Microseconds()), "bare-runc-warmed-µs")
	b.ReportMetric(ratio(claw, bareWarm), "ratio-warmed-runc")
	// --init: pid 1 forks the agent and stays to reap it.
	b.ReportMetric(float64(median(init).Microseconds()), "clawos-run-init-µs")
	b.ReportMetric(ratio(init, claw), "init/plain")
	b.ReportMetric(float64(median(cold).Microseconds()), "clawos-run-cold-µs")
	b.ReportMetric(ratio(cold, claw), "cold/warm")
	if runcLC != "" {
		b.ReportMetric(float64(median(bareLC).Microseconds()), "runc-libcontainer-µs")
		b.ReportMetric(ratio(claw, bareLC), "ratio-libcontainer")
	}
	if bwrap != nil {
		b.ReportMetric(float64(median(bw).Microseconds()), "bubblewrap-µs")
		b.ReportMetric(ratio(claw, bw), "clawos/bubblewrap")
	}
}

// runcLibcontainer is runc of the libcontainer version clawos-run embeds
// (go.mod's), as make runc-libcontainer installs it; "" where it is not
// built (the anchor is then left out, and said).
func runcLibcontainer(b *testing.B) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/opencontainers/runc").Output()
	if err != nil {
		b.Logf("runc of the embedded libcontainer: %v", err)
		return ""
	}
	p := filepath.Join("/var/cache/clawos-test", "runc-"+strings.TrimSpace(string(out)), "runc")
	if _, err := os.Stat(p); err != nil {
		b.Logf("no runc of the embedded libcontainer (make runc-libcontainer): %v", err)
		return ""
	}
	return p
}

// bareBundle writes to bundle the bundle clawos-run would run for cmd
// under wl, made bare: the same rootfs, mounts, namespaces and limits; no
// seccomp, no init, no port rules, no cgroup path.
func bareBundle(b *testing.B, run, state, bundle, wl string, cmd ...string) {
	b.Helper()
	if out, err := exec.Command(run, append([]string{"--state-dir", state, "--write-bundle", bundle, "--whitelist", wl, "--"}, cmd...)...).CombinedOutput(); err != nil {
		b.Fatalf("write bundle: %v %s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		b.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	spec.Linux.Seccomp = nil
	spec.Process.Args = cmd
	spec.Linux.CgroupsPath = ""
	out, _ := json.Marshal(&spec)
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSyscallCost measures the cost of one syscall in a tight loop
// (clawos-probe loop, timed with the vDSO clock) under no filter, an
// allow-all filter, the profile generated from the reference whitelist (plus
// an argument-filtered getppid rule) and Docker's default profile
// (github.com/moby/profiles/seccomp), and reports ratios against allow-all:
// any filter moves calls to the slow syscall path, so allow-all is the fair
// baseline.
func BenchmarkSyscallCost(b *testing.B) {
	probe, err := filepath.Abs("../bin/clawos-probe")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(probe); err != nil {
		b.Skip("run make build first")
	}
	arch := translate.NativeArch()
	dir := b.TempDir()
	filters := map[string]string{"none": ""}
	write := func(name string, s *specs.LinuxSeccomp) {
		prog, err := seccomp.Compile(s)
		if err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		p := filepath.Join(dir, name+".bpf")
		if err := os.WriteFile(p, prog.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		filters[name] = p
	}
	write("allow-all", &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{arch.OCI()}})

	raw, err := os.ReadFile("../examples/ironclaw.whitelist.json")
	if err != nil {
		b.Fatal(err)
	}
	var wl translate.Whitelist
	if err := json.Unmarshal(raw, &wl); err != nil {
		b.Fatal(err)
	}
	wl.Syscalls = append(wl.Syscalls, translate.Rule{Name: "getppid", Permission: translate.Conditional, Conditions: &translate.Conditions{
		Description: "bench", ArgumentFilter: &translate.ArgumentFilter{ArgIndex: 0, Operator: "eq", Value: translate.NewArgValue(0)}}})
	p, err := translate.Translate(&wl, translate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	write("clawos", p.Seccomp)

	docker, err := mobyseccomp.GetDefaultProfile(specconv.Example())
	if err != nil {
		b.Fatal(err)
	}
	// Like runc, drop names this libseccomp does not know.
	for i := range docker.Syscalls {
		var known []string
		for _, n := range docker.Syscalls[i].Names {
			if _, ok := arch.SyscallNumber(n); ok {
				known = append(known, n)
			}
		}
		docker.Syscalls[i].Names = known
	}
	var kept []specs.LinuxSyscall
	for _, c := range docker.Syscalls {
		if len(c.Names) > 0 {
			kept = append(kept, c)
		}
	}
	docker.Syscalls = kept
	write("docker-default", docker)

	const count = 200000
	measure := func(filter string, nr int) float64 {
		args := []string{"loop", strconv.Itoa(nr), strconv.Itoa(count)}
		if filter != "" {
			args = append([]string{"--bpf", filter}, args...)
		}
		out, err := exec.Command(probe, args...).Output()
		if err != nil {
			b.Fatalf("probe %v: %v", args, err)
		}
		f := strings.Fields(string(out))
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			b.Fatalf("probe output %q", out)
		}
		return v
	}
	for _, call := range []struct{ name, syscall string }{{"allowed-getpid", "getpid"}, {"arg-filtered-getppid", "getppid"}} {
		nr, _ := arch.SyscallNumber(call.syscall)
		b.Run(call.name, func(b *testing.B) {
			sum := map[string]float64{}
			for i := 0; i < b.N; i++ {
				for _, f := range []string{"none", "allow-all", "clawos", "docker-default"} {
					sum[f] += measure(filters[f], nr)
				}
			}
			n := float64(b.N)
			for _, f := range []string{"none", "allow-all", "clawos", "docker-default"} {
				b.ReportMetric(sum[f]/n, f+"-ns/call")
			}
			b.ReportMetric(sum["clawos"]/sum["allow-all"], "clawos/allow-all")
			b.ReportMetric(sum["docker-default"]/sum["allow-all"], "docker/allow-all")
			b.ReportMetric(sum["clawos"]/sum["docker-default"], "clawos/docker")
		})
	}
}

// BenchmarkHeldMemory measures the host memory a sandbox holds while its
// agent runs, everything of it but the agent (the sum of the resident sets,
// VmRSS and PSS, of the launcher's process tree without the agent):
// clawos-run after the hand-off to clawos-wait, clawos-run waiting itself
// (--hand-off-after -1s), `runc run` of the equivalent bundle, and
// bubblewrap with equivalent namespaces where it is installed. The agent
// is `clawos-probe ready`.
func BenchmarkHeldMemory(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root, runc and %s=1", integrationEnv)
	}
	run, err := filepath.Abs("../bin/clawos-run")
	if err != nil {
		b.Fatal(err)
	}
	probe, err := filepath.Abs("../bin/clawos-probe")
	if err != nil {
		b.Fatal(err)
	}
	state := "/run/clawos-bench"
	bundle := filepath.Join(state, "held-bundle")
	os.RemoveAll(bundle)
	defer os.RemoveAll(bundle)
	bareBundle(b, run, state, bundle, probeWhitelist, probe, "ready")
	runcRoot := filepath.Join(state, "runc-bare")
	launchers := []struct {
		name string
		args []string
	}{
		{"clawos-run", []string{run, "--state-dir", state, "--whitelist", probeWhitelist, "--", probe, "ready"}},
		{"clawos-run-no-hand-off", []string{run, "--state-dir", state, "--hand-off-after", "-1s", "--whitelist", probeWhitelist, "--", probe, "ready"}},
		{"runc", nil}, // the container id is new each run
	}
	if bwrap, err := exec.LookPath("bwrap"); err == nil {
		launchers = append(launchers, struct {
			name string
			args []string
		}{"bubblewrap", []string{bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--ro-bind", "/usr", "/usr",
			"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--ro-bind", probe, "/probe", "/probe", "ready"}})
	}
	rss := make([]float64, len(launchers))
	pss := make([]float64, len(launchers))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, l := range launchers {
			args := l.args
			if l.name == "runc" {
				id := fmt.Sprintf("held-%d-%d", os.Getpid(), i)
				args = []string{"runc", "--root", runcRoot, "run", "--bundle", bundle, id}
				defer exec.Command("runc", "--root", runcRoot, "delete", "-f", id).Run()
			}
			r, p := heldBy(b, args, l.name == "clawos-run")
			rss[k] += float64(r)
			pss[k] += float64(p)
		}
	}
	b.StopTimer()
	// The killed clawos-runs' sandboxes are removed by the next run.
	if out, err := exec.Command(run, "--state-dir", state, "--whitelist", probeWhitelist, "--", probe, "status").CombinedOutput(); err != nil {
		b.Errorf("clean-up run: %v %s", err, out)
	}
	for k, l := range launchers {
		b.ReportMetric(rss[k]/float64(b.N), l.name+"-rss-kB")
		b.ReportMetric(pss[k]/float64(b.N), l.name+"-pss-kB")
	}
}

// heldBy starts a launcher whose agent is `clawos-probe ready`, waits for
// the agent's ready (and, handedOff, for the launcher to be clawos-wait),
// sums VmRSS and PSS of the launcher's process tree without the agent in
// kB, then kills the launcher and waits for it.
func heldBy(b *testing.B, args []string, handedOff bool) (rssKB, pssKB int) {
	b.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		// The agents die with their launchers (parent-death signals).
		cmd.Process.Kill()
		cmd.Wait()
	}()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		b.Fatalf("%s: the agent did not get ready: %q %v (%s)", args[0], buf, err, stderr.String())
	}
	for deadline := time.Now().Add(5 * time.Second); handedOff && program(cmd.Process.Pid) != "clawos-wait"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("clawos-run did not hand off in 5 s")
		}
	}
	for _, pid := range processTree(cmd.Process.Pid) {
		if program(pid) == "clawos-probe" {
			continue
		}
		rssKB += residentKB(b, pid)
		pss, _ := procKB(pid, "smaps_rollup", "Pss:") // 0 where it cannot be read
		pssKB += pss
	}
	return rssKB, pssKB
}

// processTree is pid and its descendants.
func processTree(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(out[i]) + "/task/*/children")
		for _, t := range tasks {
			b, _ := os.ReadFile(t)
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}
