package test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
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

// hostListeners listens on the host's 127.0.0.1 on each TCP port (the
// listeners pasta's gateway mapping reaches) and returns what closes them.
func hostListeners(t testing.TB, ports ...string) (closeAll func()) {
	t.Helper()
	var ls []net.Listener
	closeAll = func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, port := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+port)
		if err != nil {
			closeAll()
			t.Fatalf("a host listener on 127.0.0.1:%s: %v", port, err)
		}
		ls = append(ls, l)
	}
	return closeAll
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
	defer hostListeners(t, "5432", "39213")()
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
		// Handed off to clawos-wait (the embedded runtime): pasta still
		// serves the agent, and goes at its end, and with a killed
		// clawos-wait.
		want := map[string]string{"embedded": "clawos-wait", "runc": "clawos-run"}[s.runtime]
		h := s.launch(t, "--net", "pasta", "--hand-off-after", "0s", "--whitelist", probeWhitelist, "--", s.probe, "ready-then", "connect", gw, "5432")
		waitProgram(t, h.cmd.Process.Pid, want)
		h.stdin.Write([]byte{1})
		if code := h.exitCode(t); code != 0 {
			t.Errorf("a host listener through pasta after the hand-off: exit %d (%s)", code, h.stderr)
		}
		noPasta(t, s.stateDir, "after a handed-off run")
		h = s.launch(t, "--net", "pasta", "--hand-off-after", "0s", "--whitelist", probeWhitelist, "--", s.probe, "ready")
		waitProgram(t, h.cmd.Process.Pid, want)
		h.cmd.Process.Kill()
		h.cmd.Wait()
		noPasta(t, s.stateDir, "after clawos-wait was killed")
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

// TestRunPastaDNS: under --net pasta the sandbox's /etc/resolv.conf names
// pasta's forwarding address, and a query sent there reaches the host's
// resolver, wherever that listens, through pasta. The host's resolver here
// is a responder on the host's 127.0.0.1:53 that answers every A query
// with 192.0.2.55: clawos-run runs in a private mount namespace whose
// /etc/resolv.conf names it (pasta forwards to the first nameserver of the
// resolv.conf it sees), so no query leaves this machine. DNS is held to the
// port rules like any traffic: a whitelist whose port rules lack 53 gets
// EPERM.
func TestRunPastaDNS(t *testing.T) {
	s := requireSandbox(t)
	if _, err := exec.LookPath("pasta"); err != nil {
		t.Fatal("pasta is missing: .ci/setup installs passt")
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:53")
	if err != nil {
		t.Fatalf("the test's resolver on the host's 127.0.0.1:53: %v", err)
	}
	defer conn.Close()
	go answerA(conn, [4]byte{192, 0, 2, 55})
	dir := t.TempDir()
	resolv := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\nsearch example.internal\noptions ndots:1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The reference whitelist's ports and 53: anysocket's with 53 added,
	// signed again.
	wl := filepath.Join(dir, "dns.whitelist.json")
	raw, err := os.ReadFile("testdata/anysocket.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	withDNS := regexp.MustCompile(`"allowed_ports":\s*\[\s*5432\s*\]`).ReplaceAllString(string(raw), `"allowed_ports": [53, 5432]`)
	if withDNS == string(raw) {
		t.Fatal("testdata/anysocket.whitelist.json: no port rule [5432] to add 53 to")
	}
	if err := os.WriteFile(wl, []byte(withDNS), 0o644); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(filepath.Dir(s.run), "clawos-policy")
	if out, err := exec.Command(policy, "sign", "--in-place", wl).CombinedOutput(); err != nil {
		t.Fatalf("sign: %v %s", err, out)
	}
	inMountNS := func(args ...string) runResult {
		return runSplit(t, 60*time.Second, "unshare", append([]string{"--mount", "--propagation", "private", "--", "sh", "-c",
			`mount --bind "$0" /etc/resolv.conf && exec "$@"`, resolv, s.run}, append(s.flags(), args...)...)...)
	}
	r := inMountNS("--net", "pasta", "--whitelist", wl, "--", s.probe, "dns", "db.example.internal")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "a 192.0.2.55" {
		t.Errorf("a name resolved through pasta: exit %d, %q (%s)", r.code, r.stdout, r.stderr)
	}
	r = inMountNS("--net", "pasta", "--whitelist", "testdata/tools.whitelist.json", "--", "/bin/cat", "/etc/resolv.conf")
	if want := "nameserver 169.254.1.1\nsearch example.internal\noptions ndots:1\n"; r.code != 0 || r.stdout != want {
		t.Errorf("the sandbox's /etc/resolv.conf: exit %d, %q, want %q (%s)", r.code, r.stdout, want, r.stderr)
	}
	r = inMountNS("--net", "pasta", "--whitelist", "testdata/anysocket.whitelist.json", "--", s.probe, "dns", "db.example.internal")
	if r.code != int(unix.EPERM) {
		t.Errorf("DNS without port 53 in the port rules: exit %d, want EPERM (%s%s)", r.code, r.stdout, r.stderr)
	}
	noPasta(t, s.stateDir, "after the DNS runs")
	assertClean(t, s)
}

// answerA answers every DNS query that arrives on conn with one A record,
// addr, until conn is closed.
func answerA(conn net.PacketConn, addr [4]byte) {
	buf := make([]byte, 512)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionAvailable: true})
		b.EnableCompression()
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}, dnsmessage.AResource{A: addr})
		if msg, err := b.Finish(); err == nil {
			conn.WriteTo(msg, from)
		}
	}
}
