package test

import (
	"encoding/json"
	"fmt"
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

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// BenchmarkStart measures start-to-exit of /usr/bin/true under clawos-run
// (reference whitelist, start baseline, port rules, two filters, Landlock)
// against bare `runc run` of the bundle clawos-run writes for the same
// command, without its filter and init, and clawos-run --init against
// clawos-run. Runs alternate, so drift hits all.
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
	if out, err := exec.Command(run, "--state-dir", state, "--write-bundle", bundle, "--whitelist", wl, "--", "/usr/bin/true").CombinedOutput(); err != nil {
		b.Fatalf("write bundle: %v %s", err, out)
	}
	// The bare equivalent: same rootfs, mounts, namespaces and limits; no
	// seccomp, no init, no port rules.
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
	spec.Process.Args = []string{"/usr/bin/true"}
	spec.Linux.CgroupsPath = ""
	out, _ := json.Marshal(&spec)
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		b.Fatal(err)
	}
	timeIt := func(name string, args ...string) time.Duration {
		start := time.Now()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v %s", name, args, err, out)
		}
		return time.Since(start)
	}
	var bare, claw, init, cold time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bare += timeIt("runc", "--root", filepath.Join(state, "runc-bare"), "run", "--bundle", bundle, fmt.Sprintf("bench-%d-%d", os.Getpid(), i))
		claw += timeIt(run, "--state-dir", state, "--whitelist", wl, "--", "/usr/bin/true")
		init += timeIt(run, "--state-dir", state, "--init", "--whitelist", wl, "--", "/usr/bin/true")
		// A plan-cache miss every time: clawos-policy validates.
		cold += timeIt(run, "--state-dir", state, "--plan-cache", "off", "--whitelist", wl, "--", "/usr/bin/true")
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(bare.Microseconds())/n, "bare-runc-µs/run")
	b.ReportMetric(float64(claw.Microseconds())/n, "clawos-run-µs/run")
	b.ReportMetric(float64(claw)/float64(bare), "ratio")
	// --init: pid 1 forks the agent and stays to reap it.
	b.ReportMetric(float64(init.Microseconds())/n, "clawos-run-init-µs/run")
	b.ReportMetric(float64(init)/float64(claw), "init/plain")
	b.ReportMetric(float64(cold.Microseconds())/n, "clawos-run-cold-µs/run")
	b.ReportMetric(float64(cold)/float64(claw), "cold/warm")
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
