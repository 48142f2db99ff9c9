package test

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/clawos/clawos-security/hook"
)

// median of durations.
func median(d []time.Duration) time.Duration {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkHookStages measures each clawos-hook stage as an engine runs it
// (a process per call, config or state on stdin), median of b.N calls.
func BenchmarkHookStages(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root and %s=1", integrationEnv)
	}
	h := newHookStages(b)
	// The poststop hook precreate injects: clawos-poststop, in front of
	// clawos-hook poststop (measured alone as "poststop").
	injected := h.poststop()
	var pre, start, stop, quick []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, d := h.call("precreate", h.config)
		pre = append(pre, d)
		_, d = h.call("prestart", h.state)
		start = append(start, d)
		_, d = h.call("poststop", h.state)
		stop = append(stop, d)
		h.call("prestart", h.state)
		_, d = h.run(injected, h.state)
		quick = append(quick, d)
	}
	b.StopTimer()
	b.ReportMetric(float64(median(pre).Microseconds()), "precreate-median-µs")
	b.ReportMetric(float64(median(start).Microseconds()), "prestart-median-µs")
	b.ReportMetric(float64(median(stop).Microseconds()), "poststop-median-µs")
	b.ReportMetric(float64(median(quick).Microseconds()), "injected-poststop-median-µs")
}

// BenchmarkEngineStart measures start-to-exit of a container running
// /clawos-probe call getpid with the integration (annotated: precreate or
// the wrapper, prestart, poststop) against without it (no annotation, no
// hooks dir or runc itself), alternating, for podman and for ctr.
func BenchmarkEngineStart(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root, podman, containerd and %s=1", integrationEnv)
	}
	b.Run("podman", func(b *testing.B) {
		env, podman, hooksDir, image := setupPodman(b, newEngineFixture(b, "podman", "conmon"))
		args := func(with bool) []string {
			a := append([]string{}, podman...)
			if with {
				a = append(a, "--hooks-dir", hooksDir)
			}
			a = append(a, "run", "--rm", "--network", "none")
			if with {
				a = append(a, "--annotation", hook.AnnotationWhitelist+"=probe")
			}
			return append(a, image, "/clawos-probe", "call", "39")
		}
		compare(b, func(with bool) { mustRun(b, env, "podman", args(with)...) })
	})
	b.Run("ctr", func(b *testing.B) {
		ctr, wrapper, image := setupCtr(b, newEngineFixture(b, "containerd", "ctr", "runc"))
		n := 0
		compare(b, func(with bool) {
			n++
			a := append([]string{}, ctr...)
			a = append(a, "run", "--rm")
			if with {
				a = append(a, "--runc-binary", wrapper, "--annotation", hook.AnnotationWhitelist+"=probe")
			}
			mustRun(b, nil, "ctr", append(a, image, fmt.Sprintf("bench-%d", n), "/clawos-probe", "call", "39")...)
		})
	})
}

func compare(b *testing.B, run func(with bool)) {
	compareTimed(b, func(with bool) time.Duration {
		s := time.Now()
		run(with)
		return time.Since(s)
	})
}

// compareTimed is compare for runs that time themselves (leaving their
// clean-up out), reporting medians and the ratio with/without.
func compareTimed(b *testing.B, run func(with bool) time.Duration) {
	run(true) // warm caches
	run(false)
	var with, without []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		without = append(without, run(false))
		with = append(with, run(true))
	}
	b.StopTimer()
	b.ReportMetric(float64(median(without).Microseconds()), "without-median-µs")
	b.ReportMetric(float64(median(with).Microseconds()), "with-median-µs")
	b.ReportMetric(float64(median(with))/float64(median(without)), "ratio")
}

func mustRun(b *testing.B, env []string, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// BenchmarkCRI measures, through containerd's CRI plugin and crictl, the
// clawos handler against the plain runc handler of the same containerd:
// runp (pod sandbox ready: the wrapper passes the pause container through)
// and create+start of a workload container (an annotated pod on clawos:
// the wrapper confines it, createRuntime checks it and installs its port
// rules). Alternating runs, medians; removal is not timed.
func BenchmarkCRI(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root, containerd, crictl and %s=1", integrationEnv)
	}
	c := startCRI(b, newEngineFixture(b, "containerd", "ctr", "runc", "ip"))
	handler := func(with bool) string {
		if with {
			return "clawos"
		}
		return "runc"
	}
	ann := map[string]string{hook.AnnotationWhitelist: "probe"}
	b.Run("runp", func(b *testing.B) {
		compareTimed(b, func(with bool) time.Duration {
			s := time.Now()
			p := c.runp(b, handler(with), ann)
			d := time.Since(s)
			p.remove(b)
			return d
		})
	})
	b.Run("create+start", func(b *testing.B) {
		pods := map[bool]*pod{true: c.runp(b, "clawos", ann), false: c.runp(b, "runc", ann)}
		compareTimed(b, func(with bool) time.Duration {
			p := pods[with]
			s := time.Now()
			// A container that stays up: stopping one that is exiting
			// races with containerd's clean-up of its task ("ttrpc:
			// closed"), on either handler.
			id := p.create(b, "bench", "", "ready")
			p.c.must(b, "start", id)
			d := time.Since(s)
			p.c.must(b, "stop", "--timeout", "0", id)
			p.c.must(b, "rm", id)
			return d
		})
	})
}
