package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/internal/platform"
)

// hostGateway is the host's IPv4 default gateway, which pasta copies into
// the sandbox and maps to the host's loopback.
func hostGateway(t testing.TB) string {
	t.Helper()
	gw, err := platform.DefaultGateway("/proc/net/route")
	if err != nil {
		t.Fatalf("the host has no IPv4 default route (pasta needs one): %v", err)
	}
	return gw.String()
}

// pastaOf lists the pasta processes of sandboxes of stateDir (pasta
// re-executes itself as passt.avx2: matched by its namespace argument).
func pastaOf(stateDir string) []byte {
	out, _ := exec.Command("pgrep", "-a", "-f", "netns "+filepath.Join(stateDir, "netns")+"/").Output()
	return out
}

// noPasta waits (bounded) until no pasta process of stateDir is left.
func noPasta(t *testing.T, stateDir, when string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out := pastaOf(stateDir)
		if len(out) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("pasta still runs %s: %s", when, out)
			return
		}
	}
}

// TestRunPasta: --net pasta gives the agent real egress held to the
// whitelist's ports. Traffic goes only to this machine: listeners on the
// host's 127.0.0.1, reached through pasta's gateway mapping, which the
// sandbox's /etc/hosts names host.clawos.internal. The allowed port is
// reached, another is refused at once (Landlock's EACCES, or nftables'
// reset where the kernel lacks the network rules); no pasta and no
// namespace file is left after a normal exit nor after clawos-run is
// killed; without pasta the mode fails with a clear message, never falls
// back to another.
func TestRunPasta(t *testing.T) {
	if _, err := exec.LookPath("pasta"); err != nil {
		t.Fatal("pasta is missing: .ci/setup installs passt")
	}
	gw := hostGateway(t)
	for _, port := range []string{"5432", "39213"} {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			t.Fatalf("a host listener on 127.0.0.1:%s: %v", port, err)
		}
		defer l.Close()
	}
	udp, err := net.ListenPacket("udp", "127.0.0.1:5432")
	if err != nil {
		t.Fatalf("a host UDP listener on 127.0.0.1:5432: %v", err)
	}
	defer udp.Close()
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		// UDP: a datagram to the allowed port arrives at the host's
		// listener; to another port the namespace's table refuses it at the
		// send (a whitelist whose socket and sendto rules allow UDP). The
		// agent waits a little after sending: a datagram still in flight
		// (the gateway's neighbour resolution) when the sandbox ends is
		// lost with pasta, as UDP may be.
		if r := s.clawosRun(t, "--net", "pasta", "--whitelist", "testdata/anysocket.whitelist.json", "--", s.probe, "send-udp", gw, "5432", "300"); r.code != 0 {
			t.Errorf("UDP to the allowed port through pasta: exit %d (%s)", r.code, r.stderr)
		} else {
			udp.SetReadDeadline(time.Now().Add(3 * time.Second))
			buf := make([]byte, 8)
			if n, _, err := udp.ReadFrom(buf); err != nil || string(buf[:n]) != "u" {
				t.Errorf("the host's UDP listener got %q, %v", buf[:n], err)
			}
		}
		if r := s.clawosRun(t, "--net", "pasta", "--whitelist", "testdata/anysocket.whitelist.json", "--", s.probe, "send-udp", gw, "39213"); r.code != int(unix.EPERM) {
			t.Errorf("UDP to another port through pasta: exit %d, want EPERM (%s)", r.code, r.stderr)
		}
		for _, c := range []struct {
			port string
			code int
		}{{"5432", 0}, {"39213", refusedTCP()}} {
			if r := s.clawosRun(t, "--net", "pasta", "--whitelist", probeWhitelist, "--", s.probe, "connect", gw, c.port); r.code != c.code {
				t.Errorf("host listener on %s through pasta: exit %d, want %d (%s%s)", c.port, r.code, c.code, r.stdout, r.stderr)
			}
		}
		r := s.clawosRun(t, "--net", "pasta", "--whitelist", "testdata/tools.whitelist.json", "--", "/bin/sh", "-c", "grep host.clawos.internal /etc/hosts")
		if r.code != 0 || !strings.Contains(r.stdout, gw+"\thost.clawos.internal") {
			t.Errorf("the sandbox's /etc/hosts: exit %d, %q %s", r.code, r.stdout, r.stderr)
		}
		// Killed by seccomp: the same end.
		if r := s.clawosRun(t, "--net", "pasta", "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getuid")); r.code != 159 {
			t.Errorf("a seccomp kill under --net pasta: exit %d (%s)", r.code, r.stderr)
		}
		noPasta(t, s.stateDir, "after the runs")
		if left, _ := filepath.Glob(filepath.Join(s.stateDir, "netns", "*")); len(left) > 0 {
			t.Errorf("namespace files left: %v", left)
		}
		// Killed: pasta dies with clawos-run (parent-death signal).
		cmd := s.start(t, "--net", "pasta", "--whitelist", probeWhitelist, "--", s.probe, "ready")
		if len(pastaOf(s.stateDir)) == 0 {
			t.Error("no pasta while the agent runs")
		}
		cmd.Process.Kill()
		cmd.Wait()
		noPasta(t, s.stateDir, "after clawos-run was killed")
		// The next run removes what the killed one left.
		s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "status")
		if left, _ := filepath.Glob(filepath.Join(s.stateDir, "netns", "*")); len(left) > 0 {
			t.Errorf("namespace files left after the next run: %v", left)
		}
		assertClean(t, s)
		// No pasta on the PATH: refused, not another mode (the embedded
		// runtime needs no program of the PATH itself).
		if s.runtime != "embedded" {
			return
		}
		cmd = exec.Command(s.run, append(s.flags(), "--net", "pasta", "--whitelist", probeWhitelist, "--", s.probe, "status")...)
		cmd.Env = []string{"PATH=/nonexistent"}
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); err == nil || code != 125 || !strings.Contains(string(out), "needs passt's pasta") {
			t.Errorf("without pasta: exit %d, %s", code, out)
		}
		// A start that fails after the container exists undoes it all (its
		// first version panicked in Start's cleanup instead).
		assertClean(t, s)
	})
}

// BenchmarkPasta: --net pasta against --net loopback, alternating in one
// run: start to exit of /usr/bin/true under the reference whitelist; the
// cost of one TCP connection to a host listener through pasta against the
// same connection made on the host; and a bulk TCP transfer through pasta
// against the host's own loopback (ratios of the same run).
func BenchmarkPasta(b *testing.B) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		b.Skipf("needs root, pasta and %s=1", integrationEnv)
	}
	run, _ := filepath.Abs("../bin/clawos-run")
	probe, _ := filepath.Abs("../bin/clawos-probe")
	gw := hostGateway(b)
	l, err := net.Listen("tcp", "127.0.0.1:5432")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	state := "/run/clawos-bench-pasta"
	wl := "../examples/ironclaw.whitelist.json"
	timeIt := func(args ...string) time.Duration {
		start := time.Now()
		if out, err := exec.Command(run, append([]string{"--state-dir", state}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("%v: %v %s", args, err, out)
		}
		return time.Since(start)
	}
	metric := func(name string, cmd *exec.Cmd) float64 {
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("%v: %v %s", cmd.Args, err, out)
		}
		var v float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), name+" %f", &v); err != nil {
			b.Fatalf("%v: %q", cmd.Args, out)
		}
		return v
	}
	var loop, pasta time.Duration
	var connSandbox, connHost, bulkSandbox, bulkHost float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		loop += timeIt("--net", "loopback", "--whitelist", wl, "--", "/usr/bin/true")
		pasta += timeIt("--net", "pasta", "--whitelist", wl, "--", "/usr/bin/true")
		connSandbox += metric("ns_per_connect", exec.Command(run, "--state-dir", state, "--net", "pasta", "--whitelist", probeWhitelist, "--", probe, "connects", gw, "5432", "200"))
		connHost += metric("ns_per_connect", exec.Command(probe, "connects", "127.0.0.1", "5432", "200"))
		bulkSandbox += metric("bytes_per_sec", exec.Command(run, "--state-dir", state, "--net", "pasta", "--whitelist", probeWhitelist, "--", probe, "bulk", gw, "5432", "256"))
		bulkHost += metric("bytes_per_sec", exec.Command(probe, "bulk", "127.0.0.1", "5432", "256"))
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(loop.Microseconds())/n, "loopback-start-µs")
	b.ReportMetric(float64(pasta.Microseconds())/n, "pasta-start-µs")
	b.ReportMetric(float64(pasta)/float64(loop), "start-ratio")
	b.ReportMetric(connSandbox/n/1000, "pasta-µs/connect")
	b.ReportMetric(connHost/n/1000, "host-µs/connect")
	b.ReportMetric(bulkSandbox/n/1e6, "pasta-MB/s")
	b.ReportMetric(bulkHost/n/1e6, "host-MB/s")
	b.ReportMetric(bulkSandbox/bulkHost, "throughput-ratio")
}
