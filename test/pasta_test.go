package test

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostGateway is the host's IPv4 default gateway, which pasta copies into
// the sandbox and maps to the host's loopback.
func hostGateway(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/net/route")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) < 3 || fl[1] != "00000000" {
			continue
		}
		b, err := hex.DecodeString(fl[2])
		if err != nil || len(b) != 4 {
			continue
		}
		var a [4]byte
		binary.LittleEndian.PutUint32(a[:], binary.BigEndian.Uint32(b))
		return netip.AddrFrom4(a).String()
	}
	t.Fatal("the host has no IPv4 default route (pasta needs one)")
	return ""
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
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
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
