package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// many runs n sandboxes of /usr/bin/true under the reference whitelist
// at once (concurrently) or one after the other, and returns each run's
// wall time, exit status and the launcher's peak resident set (KiB).
func many(t testing.TB, s sandboxTools, n int, concurrent bool, tag string) (durs []time.Duration, codes []int, maxRSS []int64) {
	t.Helper()
	durs, codes, maxRSS = make([]time.Duration, n), make([]int, n), make([]int64, n)
	one := func(i int) {
		cmd := exec.Command(s.run, append(s.flags(), "--id", fmt.Sprintf("many-%s-%d-%d", tag, os.Getpid(), i),
			"--whitelist", "../examples/ironclaw.whitelist.json", "--", "/usr/bin/true")...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		durs[i] = time.Since(start)
		if cmd.ProcessState != nil {
			codes[i] = cmd.ProcessState.ExitCode()
			maxRSS[i] = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
		}
		if err != nil {
			t.Errorf("sandbox %d: %v %s", i, err, out)
		}
	}
	if !concurrent {
		for i := 0; i < n; i++ {
			one(i)
		}
		return
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); one(i) }()
	}
	wg.Wait()
	return
}

// TestManySandboxes starts sandboxes concurrently under each runtime:
// every one succeeds (no run's stale-state cleanup takes another's live
// sandbox), and none leaves a bundle, runtime state, cgroup, mount,
// process or nftables table behind.
func TestManySandboxes(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		_, codes, _ := many(t, s, 12, true, s.runtime)
		for i, c := range codes {
			if c != 0 {
				t.Errorf("sandbox %d exited %d", i, c)
			}
		}
		assertClean(t, s)
	})
}

// BenchmarkManySandboxes: 50 sandboxes started at once against 50 bare
// `runc run`s of the equivalent bundle (throughput and p50/p99 start to
// exit), then 500 one after the other with the launcher's peak memory of
// the first and last 50; after each, nothing may be left behind.
func BenchmarkManySandboxes(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root, runc and %s=1", integrationEnv)
	}
	run, err := filepath.Abs("../bin/clawos-run")
	if err != nil {
		b.Fatal(err)
	}
	s := sandboxTools{run: run, stateDir: "/run/clawos-bench-many", runtime: "embedded"}
	bundle := filepath.Join(s.stateDir, "bare-bundle")
	os.RemoveAll(bundle)
	defer os.RemoveAll(bundle)
	if out, err := exec.Command(run, "--state-dir", s.stateDir, "--write-bundle", bundle, "--whitelist", "../examples/ironclaw.whitelist.json", "--", "/usr/bin/true").CombinedOutput(); err != nil {
		b.Fatalf("write bundle: %v %s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, _ := os.ReadFile(cfgPath)
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		b.Fatal(err)
	}
	spec.Linux.Seccomp, spec.Process.Args, spec.Linux.CgroupsPath = nil, []string{"/usr/bin/true"}, ""
	out, _ := json.Marshal(&spec)
	if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
		b.Fatal(err)
	}
	const n = 50
	bare := func() time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := exec.Command("runc", "--root", filepath.Join(s.stateDir, "runc-bare"), "run", "--bundle", bundle,
					fmt.Sprintf("bare-%d-%d", os.Getpid(), i)).CombinedOutput(); err != nil {
					b.Errorf("runc run: %v %s", err, out)
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	pct := func(d []time.Duration, p float64) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bareWall := bare()
		start := time.Now()
		durs, _, _ := many(b, s, n, true, fmt.Sprint(i))
		wall := time.Since(start)
		b.ReportMetric(float64(n)/wall.Seconds(), "sandboxes/s")
		b.ReportMetric(float64(n)/bareWall.Seconds(), "bare-runc/s")
		b.ReportMetric(bareWall.Seconds()/wall.Seconds(), "throughput-ratio")
		b.ReportMetric(pct(durs, 0.5), "p50-ms")
		b.ReportMetric(pct(durs, 0.99), "p99-ms")
		assertClean(b, s)
	}
	b.StopTimer()
	// 500 in a row: all succeed, nothing left, the launcher's peak memory
	// the same at the end as at the start.
	_, _, rss := many(b, s, 500, false, "seq")
	assertClean(b, s)
	med := func(v []int64) float64 {
		v = slices.Clone(v)
		slices.Sort(v)
		return float64(v[len(v)/2])
	}
	b.ReportMetric(med(rss[:50]), "maxrss-first50-KiB")
	b.ReportMetric(med(rss[len(rss)-50:]), "maxrss-last50-KiB")
}
