package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkLearn measures what recording costs, against a bare run and
// against strace -f on the same workload, in the same run:
//   - per-call: clawos-probe making getpid 20000 times; the probe times its
//     own loop, so sandbox start-up is left out (ns per call);
//   - goworker: the Go program of the learn tests, start to exit.
//
// Modes: bare (on the host), strace -f -o /dev/null (on the host),
// sandbox (clawos-run enforcing the probe or learned whitelist), learn
// (clawos-run --learn). Medians of b.N runs each, alternating.
func BenchmarkLearn(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root and %s=1", integrationEnv)
	}
	run := built(b, "../bin/clawos-run")
	probe := built(b, "../bin/clawos-probe")
	if _, err := exec.LookPath("strace"); err != nil {
		b.Fatal("strace is missing: .ci/setup installs it")
	}
	dir := b.TempDir()
	os.Chmod(dir, 0o755)
	state := "/run/clawos-test" // as the sandbox tests: readable for the sandbox's user namespace
	learned := filepath.Join(dir, "learned.json")
	// modes are the command lines of each mode: wl is the sandbox's
	// whitelist, out the learn mode's output.
	modes := func(cmd []string, wl, out string) map[string][]string {
		sandbox := []string{run, "--state-dir", state}
		return map[string][]string{
			"bare":    cmd,
			"strace":  append([]string{"strace", "-f", "-qq", "-o", "/dev/null"}, cmd...),
			"sandbox": append(append(append([]string{}, sandbox...), "--whitelist", wl, "--baseline", "none", "--"), cmd...),
			"learn":   append(append(append([]string{}, sandbox...), "--learn", out, "--force", "--"), cmd...),
		}
	}
	order := []string{"bare", "strace", "sandbox", "learn"}
	exe := func(b *testing.B, argv []string) (string, time.Duration) {
		s := time.Now()
		r := runSplit(b, 5*time.Minute, argv[0], argv[1:]...)
		d := time.Since(s)
		if r.code != 0 {
			b.Fatalf("%v: exit %d\n%s%s", argv, r.code, r.stdout, r.stderr)
		}
		return r.stdout, d
	}
	b.Run("per-call", func(b *testing.B) {
		cmd := []string{probe, "loop", "39", "20000"}
		m := modes(cmd, "testdata/probe.whitelist.json", learned)
		// The probe whitelist with its start baseline (the probe is static).
		m["sandbox"] = append([]string{run, "--state-dir", state, "--whitelist", "testdata/probe.whitelist.json", "--"}, cmd...)
		ns := map[string][]time.Duration{}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, mode := range order {
				out, _ := exe(b, m[mode])
				f := strings.Fields(strings.TrimSpace(lastLine(out)))
				if len(f) != 2 || f[0] != "ns_per_call" {
					b.Fatalf("%s: %q", mode, out)
				}
				v, _ := strconv.ParseFloat(f[1], 64)
				ns[mode] = append(ns[mode], time.Duration(v))
			}
		}
		b.StopTimer()
		report(b, ns, "ns/call")
	})
	b.Run("goworker", func(b *testing.B) {
		gobin := filepath.Join(dir, "goworker")
		if out, err := exec.Command("go", "build", "-o", gobin, "./agents/goworker").CombinedOutput(); err != nil {
			b.Fatalf("go build: %v\n%s", err, out)
		}
		cmd := []string{gobin}
		exe(b, append([]string{run, "--state-dir", state, "--learn", learned, "--"}, cmd...))
		m := modes(cmd, learned, filepath.Join(dir, "relearned.json"))
		wall := map[string][]time.Duration{}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, mode := range order {
				_, d := exe(b, m[mode])
				wall[mode] = append(wall[mode], d)
			}
		}
		b.StopTimer()
		report(b, wall, "µs")
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// report reports each mode's median and the ratios that matter: learn and
// strace against bare, learn against strace and against the enforced
// sandbox.
func report(b *testing.B, d map[string][]time.Duration, unit string) {
	med := map[string]float64{}
	for mode, v := range d {
		med[mode] = float64(median(v))
		if unit == "µs" {
			b.ReportMetric(med[mode]/1e3, mode+"-µs")
		} else {
			b.ReportMetric(med[mode], mode+"-"+unit)
		}
	}
	b.ReportMetric(med["learn"]/med["bare"], "learn/bare")
	b.ReportMetric(med["strace"]/med["bare"], "strace/bare")
	b.ReportMetric(med["learn"]/med["strace"], "learn/strace")
	b.ReportMetric(med["learn"]/med["sandbox"], "learn/sandbox")
}
