package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/platform"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// integrationEnv enables the tests that run real sandboxes. make test sets
// it; with it set, a missing runc, nft, root or binary is a failure.
const integrationEnv = "CLAWOS_INTEGRATION"

type sandboxTools struct {
	run, probe, stateDir string
	runtime              string // --runtime
}

// runtimes are the OCI runtimes every sandbox test runs with: both must
// give the same confinement.
var runtimes = []string{"embedded", "runc"}

// eachRuntime runs f as a subtest per runtime.
func eachRuntime(t *testing.T, f func(t *testing.T, s sandboxTools)) {
	s := requireSandbox(t)
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			s := s
			s.runtime = rt
			f(t, s)
		})
	}
}

func requireSandbox(t *testing.T) sandboxTools {
	t.Helper()
	if os.Getenv(integrationEnv) == "" {
		t.Skipf("sandbox tests need root, runc and nftables; set %s=1 (make test does) to run them", integrationEnv)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the sandbox tests run as root (CI does)")
	}
	for _, tool := range []string{"runc", "nft", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: .ci/setup installs it", tool)
		}
	}
	return sandboxTools{run: built(t, "../bin/clawos-run"), probe: built(t, "../bin/clawos-probe"), stateDir: "/run/clawos-test"}
}

// built returns the absolute path of a file make build writes, failing the
// test when it is missing.
func built(t testing.TB, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(a); err != nil {
		t.Fatalf("%v: run make build first", err)
	}
	return a
}

type runResult struct {
	code           int
	stdout, stderr string
}

// clawosRun runs clawos-run with args and the test state directory.
func (s sandboxTools) clawosRun(t *testing.T, args ...string) runResult {
	t.Helper()
	return runSplit(t, 60*time.Second, s.run, append(s.flags(), args...)...)
}

// runSplit runs a command, bounded by timeout, and returns its exit status
// and its standard output and error apart; a command that cannot run fails
// the test.
func runSplit(t testing.TB, timeout time.Duration, name string, args ...string) runResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := runResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", filepath.Base(name), err)
	}
	return res
}

// flags are the flags every run of this sandbox gets.
func (s sandboxTools) flags() []string {
	f := []string{"--state-dir", s.stateDir}
	if s.runtime != "" {
		f = append(f, "--runtime", s.runtime)
	}
	return f
}

// start starts clawos-run in the background and waits until the agent
// (clawos-probe ready or sigwait) says it is ready; the agent's stdin is
// at its end.
func (s sandboxTools) start(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	l := s.launch(t, args...)
	l.stdin.Close()
	return l.cmd
}

func sysnr(t *testing.T, name string) string {
	t.Helper()
	n, ok := translate.NativeArch().SyscallNumber(name)
	if !ok {
		t.Fatalf("no syscall %s", name)
	}
	return strconv.Itoa(n)
}

const probeWhitelist = "testdata/probe.whitelist.json"

// TestRunEnforcement runs the probe under clawos-run with the test whitelist
// and with the corrected reference whitelist, and checks every verdict in
// the kernel: the agent's exit status is the errno, 159 a seccomp kill.
func TestRunEnforcement(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		const killed = 128 + int(unix.SIGSYS)
		type tc struct {
			name   string
			wl     string
			args   []string
			code   int
			stderr string
		}
		cases := []tc{
			{"allowed getpid", probeWhitelist, []string{"call", sysnr(t, "getpid")}, 0, ""},
			{"DENY returns EPERM", probeWhitelist, []string{"call", sysnr(t, "kill"), "1", "0"}, int(unix.EPERM), ""},
			{"DENY with ENOSYS", probeWhitelist, []string{"call", sysnr(t, "clone3")}, int(unix.ENOSYS), ""},
			{"unlisted call kills the agent", probeWhitelist, []string{"call", sysnr(t, "getuid")}, killed, "syscall=getuid"},
			{"read-only openat: a read open works", probeWhitelist, []string{"status"}, 0, ""},
			{"read-only openat: a write open fails while the container started", probeWhitelist, []string{"write-file", "/tmp/x"}, int(unix.EPERM), ""},
			{"read-only openat: O_RDONLY|O_CREAT refused", probeWhitelist, []string{"open", "/tmp/created", strconv.Itoa(unix.O_RDONLY | unix.O_CREAT)}, int(unix.EPERM), ""},
			{"read-only openat: O_RDONLY|O_TRUNC refused", probeWhitelist, []string{"open", "/etc/hosts", strconv.Itoa(unix.O_RDONLY | unix.O_TRUNC)}, int(unix.EPERM), ""},
			{"read-only openat: O_TMPFILE refused", probeWhitelist, []string{"open", "/tmp", strconv.Itoa(unix.O_TMPFILE | unix.O_RDWR)}, int(unix.EPERM), ""},
			{"read-only openat: O_RDONLY|O_CLOEXEC|O_NOFOLLOW works", probeWhitelist, []string{"open", "/etc/hosts", strconv.Itoa(unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW)}, 0, ""},
			{"clone without namespace flags", probeWhitelist, []string{"forks", "2"}, 0, ""},
			{"clone with CLONE_NEWUSER", probeWhitelist, []string{"call", sysnr(t, "clone"), strconv.Itoa(unix.CLONE_NEWUSER | int(unix.SIGCHLD))}, int(unix.EPERM), ""},
			{"clone with CLONE_NEWNET", probeWhitelist, []string{"call", sysnr(t, "clone"), strconv.Itoa(unix.CLONE_NEWNET | int(unix.SIGCHLD))}, int(unix.EPERM), ""},
			{"exec of another binary kills (the whitelist does not allow execve)", probeWhitelist, []string{"exec", "/bin/true"}, killed, "syscall=execve"},
			{"reference: getpid", "../examples/ironclaw.whitelist.json", []string{"call", sysnr(t, "getpid")}, 0, ""},
			{"reference: clone3 ENOSYS", "../examples/ironclaw.whitelist.json", []string{"call", sysnr(t, "clone3")}, int(unix.ENOSYS), ""},
			{"reference: socket AF_UNIX", "../examples/ironclaw.whitelist.json", []string{"call", sysnr(t, "socket"), "1", "1"}, int(unix.EPERM), ""},
			{"reference: socket AF_INET", "../examples/ironclaw.whitelist.json", []string{"call", sysnr(t, "socket"), "2", "1"}, 0, ""},
			{"reference: unlisted getuid", "../examples/ironclaw.whitelist.json", []string{"call", sysnr(t, "getuid")}, killed, "syscall=getuid"},
		}
		if translate.NativeArch() == translate.ArchX8664 {
			i386 := tc{"i386 int 0x80", probeWhitelist, []string{"int80", "20"}, killed, "another architecture"}
			if !hostIA32(t, s.probe) {
				// Refused by the platform before seccomp: SIGSEGV, with the
				// compiled agent filter checked to kill it where ia32 calls
				// do reach seccomp.
				requireKillsI386(t, probeWhitelist, 20)
				i386.code, i386.stderr = 128+int(unix.SIGSEGV), ""
			}
			cases = append(cases, i386,
				tc{"x32 getpid", probeWhitelist, []string{"call", strconv.Itoa(0x40000000 | 39)}, killed, ""},
			)
		}
		escapes := []struct {
			name string
			args []string
		}{
			{"io_uring_setup", []string{"1", "0"}}, {"unshare", []string{strconv.Itoa(unix.CLONE_NEWUSER)}}, {"mount", nil},
			{"ptrace", nil}, {"bpf", nil}, {"keyctl", nil}, {"userfaultfd", nil}, {"perf_event_open", nil}, {"setns", nil},
			{"init_module", nil}, {"finit_module", nil}, {"delete_module", nil}, {"kexec_load", nil}, {"kexec_file_load", nil},
			{"pivot_root", nil}, {"open_by_handle_at", nil}, {"process_vm_writev", nil}, {"add_key", nil},
		}
		for _, e := range escapes {
			cases = append(cases, tc{"escape " + e.name, probeWhitelist, append([]string{"call", sysnr(t, e.name)}, e.args...), killed, "syscall=" + e.name})
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := s.clawosRun(t, append([]string{"--whitelist", c.wl, "--", s.probe}, c.args...)...)
				if r.code != c.code {
					t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
				}
				if c.stderr != "" && !strings.Contains(r.stderr, c.stderr) {
					t.Errorf("stderr lacks %q: %s", c.stderr, r.stderr)
				}
			})
		}
	})
}

// TestRunIsolation checks what the agent sees of itself and its world.
func TestRunIsolation(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		r := s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "status")
		if r.code != 0 {
			t.Fatalf("status: exit %d: %s", r.code, r.stderr)
		}
		for _, want := range []string{
			`(?m)^pid 1$`,
			`(?m)^NoNewPrivs:\s+1$`,
			`(?m)^CapEff:\s+0000000000000000$`,
			`(?m)^Seccomp:\s+2$`,
			`(?m)^Seccomp_filters:\s+2$`,
			`(?m)^uid_map\s+0\s+100000\s+65536$`,
			`(?m)^iface lo$`,
			// The security level's rlimits (strict), under both runtimes.
			`(?m)^Max open files\s+1024\s+1024\s`,
			`(?m)^Max processes\s+512\s+512\s`,
			`(?m)^Max core file size\s+0\s+0\s`,
		} {
			if !regexp.MustCompile(want).MatchString(r.stdout) {
				t.Errorf("status lacks %s:\n%s", want, r.stdout)
			}
		}
		if n := strings.Count(r.stdout, "iface "); n != 1 {
			t.Errorf("the agent sees %d interfaces, want only lo:\n%s", n, r.stdout)
		}
		// The root filesystem and the host view are read-only; /tmp is private
		// and writable (the reference whitelist allows write opens).
		wl := "../examples/ironclaw.whitelist.json"
		for _, c := range []struct {
			path string
			code int
		}{{"/etc/clawos-test", int(unix.EROFS)}, {"/usr/clawos-test", int(unix.EROFS)}, {"/clawos-test", int(unix.EROFS)}, {"/tmp/clawos-test", 0},
			// clawos-init, which as root is one inode shared by the
			// sandboxes of a state directory: host root's file, mode
			// 0555, unmapped in the sandbox, so the permission check
			// refuses before the read-only mount would.
			{"/dev/.clawos/clawos-init", int(unix.EACCES)}} {
			if r := s.clawosRun(t, "--whitelist", wl, "--", s.probe, "write-file", c.path); r.code != c.code {
				t.Errorf("write %s: exit %d, want %d (%s)", c.path, r.code, c.code, r.stderr)
			}
		}
		// Host secrets are not there at all: /etc/shadow and /root do not
		// exist in the sandbox's view (opening them read-only: ENOENT).
		for _, p := range []string{"/etc/shadow", "/root", "/root/.ssh"} {
			if r := s.clawosRun(t, "--whitelist", wl, "--", s.probe, "open", p, "0"); r.code != int(unix.ENOENT) {
				t.Errorf("%s: exit %d, want ENOENT (not in the view)", p, r.code)
			}
		}
	})
}

// TestRunPorts checks the port restriction in the agent's own network
// namespace: an allowed port reaches a listener (its SYN-ACK passes), any
// other port is refused at once even with a listener on it.
func TestRunPorts(t *testing.T) {
	// Where the kernel has Landlock's network rules (ABI 4), clawos-init
	// holds TCP connect and bind to the port rules as well: a refused
	// port fails at the call (EACCES) before any packet, and nftables
	// behind it counts nothing. Without them nftables refuses
	// (ECONNREFUSED, counted).
	landlockNet := platform.LandlockABI() >= confine.LandlockNetABI
	refused := refusedTCP()
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		for _, c := range []struct {
			net  string
			args []string
			code int
			// counted: the nftables table reports refused packets.
			counted bool
		}{
			{"loopback", []string{"listen-connect", "5432"}, 0, false},
			{"loopback", []string{"listen-connect", "8080"}, refused, !landlockNet},
			{"loopback", []string{"listen-connect", "9443"}, refused, !landlockNet},
			// No capabilities: the listener cannot even bind a privileged port.
			{"loopback", []string{"listen-connect", "443"}, int(unix.EACCES), false},
			// --net none: no port at all (a bind is refused too, by Landlock).
			{"none", []string{"listen-connect", "5432"}, refused, !landlockNet},
		} {
			start := time.Now()
			r := s.clawosRun(t, append([]string{"--net", c.net, "--whitelist", probeWhitelist, "--", s.probe}, c.args...)...)
			if r.code != c.code {
				t.Errorf("--net %s %v: exit %d, want %d (%s)", c.net, c.args, r.code, c.code, r.stderr)
			}
			// The policy's own refusals are counted and reported; an allowed
			// port, or one Landlock refused first, is not.
			if refused := strings.Contains(r.stderr, "refused_packets"); refused != c.counted {
				t.Errorf("--net %s %v: refusal report %v: %s", c.net, c.args, refused, r.stderr)
			}
			t.Logf("--net %s %v: %s in %v", c.net, c.args, strings.TrimSpace(r.stdout), time.Since(start))
		}
		// The host's network namespace: the port rules hold by Landlock
		// alone, and only TCP is possible (seccomp refuses other sockets);
		// a kernel without Landlock's network rules refuses the start.
		host := func(args ...string) runResult {
			return s.clawosRun(t, append([]string{"--net", "host", "--whitelist", probeWhitelist, "--", s.probe}, args...)...)
		}
		if !landlockNet {
			if r := host("call", sysnr(t, "getpid")); r.code != 125 || !strings.Contains(r.stderr, "without Landlock's network rules") {
				t.Errorf("--net host with port restrictions, no Landlock network rules: exit %d, %s", r.code, r.stderr)
			}
			return
		}
		for _, c := range []struct {
			what string
			args []string
			code int
		}{
			{"TCP to the allowed port", []string{"listen-connect", "5432"}, 0},
			{"TCP to another port", []string{"listen-connect", "39211"}, int(unix.EACCES)},
			{"UDP to the allowed port (no UDP socket)", []string{"dgram", "17", "4", "5432"}, int(unix.EPERM)},
			{"UDP over IPv6 (no UDP socket)", []string{"dgram", "17", "6", "9999"}, int(unix.EPERM)},
		} {
			if r := host(c.args...); r.code != c.code {
				t.Errorf("--net host, %s: exit %d, want %d (%s)", c.what, r.code, c.code, r.stderr)
			}
		}
		// TCP Fast Open opens a connection without connect, which
		// Landlock does not see (landlock-lsm/linux#41): under --net host
		// seccomp refuses MSG_FASTOPEN (EPERM, even to an allowed port);
		// TCP_FASTOPEN_CONNECT then connect is connect, held by Landlock.
		tfo := built(t, "../bin/clawos-attack-tfo")
		for _, c := range []struct {
			what, net string
			args      []string
			code      int
		}{
			{"host: sendto MSG_FASTOPEN to an allowed port", "host", []string{"5432"}, int(unix.EPERM)},
			{"host: sendto MSG_FASTOPEN to another port", "host", []string{"39211"}, int(unix.EPERM)},
			{"host: TCP_FASTOPEN_CONNECT to another port", "host", []string{"39211", "connect"}, int(unix.EACCES)},
			{"host: TCP_FASTOPEN_CONNECT to the allowed port", "host", []string{"5432", "connect"}, 0},
			// A namespace of its own: the table refuses what Landlock missed.
			{"loopback: sendto MSG_FASTOPEN to another port", "loopback", []string{"39211"}, int(unix.ECONNREFUSED)},
		} {
			r := s.clawosRun(t, append([]string{"--net", c.net, "--whitelist", "testdata/anysocket.whitelist.json", "--ro-bind", tfo + ":/attack", "--", "/attack"}, c.args...)...)
			if r.code != c.code {
				t.Errorf("%s: exit %d, want %d (%s %s)", c.what, r.code, c.code, r.stdout, r.stderr)
			}
		}
		// No table of the sandbox's in the host's namespace, ever.
		if out, err := exec.Command("nft", "list", "tables").Output(); err != nil || bytes.Contains(out, []byte(namespaces.NftTable)) {
			t.Errorf("--net host left the host's nftables with %q (%v)", out, err)
		}
		// Without Landlock the combination is refused, whatever the kernel.
		if r := s.clawosRun(t, "--net", "host", "--landlock", "off", "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid")); r.code != 125 ||
			!strings.Contains(r.stderr, "without Landlock's network rules") {
			t.Errorf("--net host --landlock off with port restrictions: exit %d, %s", r.code, r.stderr)
		}
	})
}

// refusedTCP is the errno of a TCP connect to a refused port in a
// sandbox's own network namespace: EACCES from Landlock's network rules
// where the kernel has them, else ECONNREFUSED from nftables.
func refusedTCP() int {
	if platform.LandlockABI() >= confine.LandlockNetABI {
		return int(unix.EACCES)
	}
	return int(unix.ECONNREFUSED)
}

// TestRunPortsEveryProtocol checks that the port policy is default-deny
// for every layer-4 protocol, not only TCP and UDP: with a whitelist whose
// socket rule allows any socket (so seccomp does not stop the protocol)
// and whose connect rule allows port 5432 only, a datagram of UDP-Lite on
// any port, IPv4 and IPv6, is refused by the network namespace's table at
// the sending call (EPERM), while UDP to the allowed port arrives. The
// seccomp half (socket's protocol argument) is in TestKernelVerdicts and
// below, under the port-restricted socket rule.
func TestRunPortsEveryProtocol(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		const anySock = "testdata/anysocket.whitelist.json"
		for _, c := range []struct {
			name string
			wl   string
			args []string
			code int
		}{
			{"UDP to the allowed port arrives", anySock, []string{"dgram", "17", "4", "5432"}, 0},
			{"UDP to another port refused", anySock, []string{"dgram", "17", "4", "9999"}, int(unix.EPERM)},
			{"UDP over IPv6 to another port refused", anySock, []string{"dgram", "17", "6", "9999"}, int(unix.EPERM)},
			{"UDP-Lite to another port refused", anySock, []string{"dgram", "136", "4", "9999"}, int(unix.EPERM)},
			{"UDP-Lite over IPv6 refused", anySock, []string{"dgram", "136", "6", "9999"}, int(unix.EPERM)},
			{"UDP-Lite to the allowed port refused (it is not UDP)", anySock, []string{"dgram", "136", "4", "5432"}, int(unix.EPERM)},
			{"port-restricted socket rule refuses UDP-Lite", probeWhitelist, []string{"call", sysnr(t, "socket"), "2", "2", "136"}, int(unix.EPERM)},
			{"port-restricted socket rule refuses an ICMP ping socket", probeWhitelist, []string{"call", sysnr(t, "socket"), "2", "2", "1"}, int(unix.EPERM)},
			{"port-restricted socket rule refuses SCTP", probeWhitelist, []string{"call", sysnr(t, "socket"), "10", "1", "132"}, int(unix.EPERM)},
			{"port-restricted socket rule allows TCP", probeWhitelist, []string{"call", sysnr(t, "socket"), "2", "1", "6"}, 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := s.clawosRun(t, append([]string{"--whitelist", c.wl, "--", s.probe}, c.args...)...)
				if r.code != c.code {
					t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
				}
			})
		}
	})
}

// TestRunSlice checks that the P1.5 quotas hold: the pids limit stops
// forks, the memory limit (swap 0) kills an agent that exceeds it.
func TestRunSlice(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		if r := s.clawosRun(t, "--slice", "wasm", "--whitelist", probeWhitelist, "--", s.probe, "forks", "200"); r.code != int(unix.EAGAIN) {
			t.Errorf("200 forks under wasm.slice (pids.max 128): exit %d, want EAGAIN (%s)", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--slice", "wasm", "--whitelist", probeWhitelist, "--", s.probe, "forks", "100"); r.code != 0 {
			t.Errorf("100 forks under wasm.slice: exit %d (%s)", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--slice", "wasm", "--whitelist", probeWhitelist, "--", s.probe, "alloc", "700"); r.code != 128+int(unix.SIGKILL) {
			t.Errorf("700 MiB under wasm.slice (memory.max 512M, swap 0): exit %d, want an OOM kill (%s)", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--slice", "wasm", "--whitelist", probeWhitelist, "--", s.probe, "alloc", "100"); r.code != 0 {
			t.Errorf("100 MiB under wasm.slice: exit %d (%s)", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--slice", "nosuch", "--whitelist", probeWhitelist, "--", s.probe, "status"); r.code != 125 || !strings.Contains(r.stderr, "no P1.5 slice") {
			t.Errorf("unknown slice: exit %d %s", r.code, r.stderr)
		}
	})
}

// TestRunExitAndSignals checks that exit statuses pass through and that
// signals reach the agent.
func TestRunExitAndSignals(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		if r := s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "exit_group"), "7"); r.code != 7 {
			t.Errorf("exit_group(7): exit %d", r.code)
		}
		// An agent with handlers gets each forwarded signal.
		for _, sig := range []syscall.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP} {
			cmd := s.start(t, "--whitelist", probeWhitelist, "--", s.probe, "sigwait")
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			var ee *exec.ExitError
			if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 128+int(sig) {
				t.Errorf("%v: %v, want exit %d", sig, err, 128+int(sig))
			}
		}
		// An agent without a handler (pid 1 ignores the signal) is killed
		// after --kill-after.
		cmd := s.start(t, "--kill-after", "500ms", "--whitelist", probeWhitelist, "--", s.probe, "ready")
		if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
			t.Fatal(err)
		}
		var ee *exec.ExitError
		if err := cmd.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 128+int(unix.SIGKILL) {
			t.Errorf("agent without a handler: %v, want exit %d", err, 128+int(unix.SIGKILL))
		}
	})
}

// TestRunCleanup checks that nothing is left behind after a normal exit, a
// seccomp kill, and a SIGKILL of clawos-run itself (cleaned on the next run).
func TestRunCleanup(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "status")
		s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getuid"))
		assertClean(t, s)

		id := "clawos-test-sigkill-" + s.runtime
		// With a writable bind: its idmapped mount, staged on the host
		// while the sandbox is created, is not left behind either.
		cmd := s.start(t, "--id", id, "--bind", ownedDir(t)+":/ws", "--whitelist", probeWhitelist, "--", s.probe, "ready")
		agent := agentOf(t, id)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		// The agent dies with its launcher (parent-death signal), not at
		// the next run.
		waitGone(t, agent, "the agent of a SIGKILLed clawos-run")
		if _, err := os.Stat(filepath.Join(s.stateDir, "bundles", id)); err != nil {
			t.Fatalf("after SIGKILL of clawos-run the bundle should still be there until the next run: %v", err)
		}
		// The next run removes what is left, with the runtime that made
		// it, even when it uses the other one itself.
		other := s
		other.runtime = map[string]string{"embedded": "runc", "runc": "embedded"}[s.runtime]
		other.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "status")
		assertClean(t, s)
		assertClean(t, other)
	})
}

func assertClean(t testing.TB, s sandboxTools) {
	t.Helper()
	if left, _ := filepath.Glob(filepath.Join(s.stateDir, "bundles", "*")); len(left) > 0 {
		t.Errorf("bundles left behind: %v", left)
	}
	if s.runtime == "runc" {
		out, err := exec.Command("runc", "--root", filepath.Join(s.stateDir, "runc"), "list", "-q").Output()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("runc still lists containers: %q %v", out, err)
		}
	}
	if left, _ := filepath.Glob(filepath.Join(s.stateDir, "idmap", "*")); len(left) > 0 {
		t.Errorf("staged idmapped mounts left behind: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(s.stateDir, "libcontainer", "*")); len(left) > 0 {
		t.Errorf("libcontainer state left behind: %v", left)
	}
	if out, _ := exec.Command("pgrep", "-f", "clawos-probe ready").Output(); len(out) > 0 {
		t.Errorf("agents still running: %s", out)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/clawos-*"); len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
	if left, _ := filepath.Glob("/sys/fs/cgroup/clawos-*"); len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if bytes.Contains(mi, []byte(s.stateDir)) {
		t.Errorf("mounts left behind under %s", s.stateDir)
	}
	// The port rules live in each sandbox's own network namespace: never
	// in the host's.
	if out, err := exec.Command("nft", "list", "tables").Output(); err != nil || bytes.Contains(out, []byte(namespaces.NftTable)) {
		t.Errorf("the host's nftables: %q %v", out, err)
	}
}

// TestRunFlags checks the filesystem, environment and identity flags.
func TestRunFlags(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		host := filepath.Join(s.stateDir, "flags-"+s.runtime)
		os.RemoveAll(host)
		defer os.RemoveAll(host)
		if err := os.MkdirAll(host, 0o777); err != nil {
			t.Fatal(err)
		}
		os.Chmod(host, 0o777)                       // writable by the sandbox's mapped root
		chownUser(t, host)                          // a writable bind of a root-owned directory is refused
		wl := "../examples/ironclaw.whitelist.json" // allows write opens
		for _, c := range []struct {
			name string
			args []string
			code int
			out  string
		}{
			{"--bind is writable", []string{"--bind", host + ":/data", "--whitelist", wl, "--", s.probe, "write-file", "/data/from-agent"}, 0, ""},
			{"--ro-bind is read-only", []string{"--ro-bind", host + ":/data", "--whitelist", wl, "--", s.probe, "write-file", "/data/x"}, int(unix.EROFS), ""},
			{"--tmpfs is writable", []string{"--tmpfs", "/scratch", "--whitelist", wl, "--", s.probe, "write-file", "/scratch/x"}, 0, ""},
			{"--env", []string{"--env", "AGENT_MODE=test", "--whitelist", probeWhitelist, "--", s.probe, "env", "AGENT_MODE"}, 0, "AGENT_MODE=test"},
			{"host environment is not passed", []string{"--whitelist", probeWhitelist, "--", s.probe, "env", "CLAWOS_INTEGRATION"}, int(unix.ENOENT), "(unset)"},
			{"--hostname", []string{"--hostname", "agent-7", "--whitelist", probeWhitelist, "--", s.probe, "uname"}, 0, "hostname agent-7"},
			{"default hostname", []string{"--whitelist", probeWhitelist, "--", s.probe, "uname"}, 0, "hostname clawos-agent"},
			{"--chdir", []string{"--chdir", "/tmp", "--whitelist", probeWhitelist, "--", s.probe, "cwd"}, 0, "/tmp\n"},
			{"--baseline none: the static probe cannot even start", []string{"--baseline", "none", "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid")}, 159, ""},
		} {
			r := s.clawosRun(t, c.args...)
			if r.code != c.code || !strings.Contains(r.stdout, c.out) {
				t.Errorf("%s: exit %d (want %d), stdout %q (want %q), stderr %s", c.name, r.code, c.code, r.stdout, c.out, r.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(host, "from-agent")); err != nil {
			t.Errorf("the agent's write through --bind did not reach the host: %v", err)
		}
		// --print-spec describes both stages and runs nothing.
		r := s.clawosRun(t, "--print-spec", "--whitelist", probeWhitelist, "--", s.probe, "status")
		var ps struct {
			Config     specs.Spec         `json:"config"`
			AgentStage specs.LinuxSeccomp `json:"agent_stage"`
			Origins    []translate.Origin `json:"container_stage_origins"`
			Nftables   string             `json:"nftables"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &ps); err != nil || r.code != 0 {
			t.Fatalf("--print-spec: %v exit %d", err, r.code)
		}
		if ps.Config.Linux.Seccomp.DefaultAction != specs.ActKillProcess || ps.AgentStage.DefaultAction != specs.ActKillProcess ||
			!strings.Contains(ps.Nftables, "5432") || len(ps.Origins) == 0 || ps.Config.Process.Args[0] != "/dev/.clawos/clawos-init" {
			t.Errorf("--print-spec output incomplete: %s", r.stdout[:min(len(r.stdout), 400)])
		}
		// --log-format json: failures are P1.7 payloads.
		r = s.clawosRun(t, "--log-format", "json", "--whitelist", "../translate/testdata/upstream-example.json", "--", s.probe, "status")
		var payload struct {
			Code      int    `json:"error_code"`
			Component string `json:"component"`
		}
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n") // warnings first, the payload last
		if r.code != 125 || json.Unmarshal([]byte(lines[len(lines)-1]), &payload) != nil || payload.Code == 0 || payload.Component != "clawos-run" {
			t.Errorf("--log-format json failure: exit %d, stderr %s", r.code, r.stderr)
		}
	})
}

// TestRunAppArmor checks --apparmor where the kernel has no AppArmor (this
// VM): auto runs the agent and says no profile was applied (at debug
// level), required refuses. Loading and enforcement need a kernel with AppArmor (issue 5's
// VM test); the generated profiles are compiled by apparmor_parser in
// package apparmor.
func TestRunAppArmor(t *testing.T) {
	s := requireSandbox(t)
	if platform.Probe(nil).AppArmor {
		// Where the kernel has AppArmor, auto and required apply the
		// generated profile: the agent runs confined by it (its
		// /proc/self/attr/current names the profile).
		for _, mode := range []string{"auto", "required"} {
			r := s.clawosRun(t, "--apparmor", mode, "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid"))
			if r.code != 0 || strings.Contains(r.stderr, "no AppArmor profile applied") {
				t.Errorf("--apparmor %s on a kernel with AppArmor: exit %d, stderr %s", mode, r.code, r.stderr)
			}
		}
		return
	}
	// auto: the agent runs; the missing profile is said at debug level
	// (clawos-run --check says it once), not on every run.
	r := s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid"))
	if r.code != 0 || strings.Contains(r.stderr, "no AppArmor profile applied") {
		t.Errorf("--apparmor auto: exit %d, stderr %s (want no AppArmor notice at the default level)", r.code, r.stderr)
	}
	r = s.clawosRun(t, "--log-level", "debug", "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid"))
	if r.code != 0 || !strings.Contains(r.stderr, "no AppArmor profile applied") {
		t.Errorf("--apparmor auto --log-level debug: exit %d, stderr %s", r.code, r.stderr)
	}
	r = s.clawosRun(t, "--apparmor", "required", "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid"))
	if r.code != 125 || !strings.Contains(r.stderr, "kernel has no AppArmor") || strings.Contains(r.stdout, "ok") {
		t.Errorf("--apparmor required: exit %d, stderr %s", r.code, r.stderr)
	}
	if r := s.clawosRun(t, "--apparmor", "off", "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid")); r.code != 0 || strings.Contains(r.stderr, "AppArmor") {
		t.Errorf("--apparmor off: exit %d, stderr %s", r.code, r.stderr)
	}
}

// TestRunTTY checks that --tty gives the agent a terminal.
func TestRunTTY(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		if r := s.clawosRun(t, "--tty", "--whitelist", probeWhitelist, "--", s.probe, "isatty"); r.code != 0 || !strings.Contains(r.stdout, "ok") {
			t.Errorf("--tty: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "isatty"); r.code != int(unix.ENOTTY) {
			t.Errorf("without --tty: exit %d, want ENOTTY", r.code)
		}
	})
}

// TestRunBundleAndRootfs runs the probe from a root filesystem of the
// user's, as --rootfs and as an OCI bundle, and checks that the user's
// files are not modified.
func TestRunBundleAndRootfs(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		dir := filepath.Join(s.stateDir, "user-bundle-"+s.runtime) // traversable by the sandbox's mapped root
		os.RemoveAll(dir)
		defer os.RemoveAll(dir)
		for _, d := range []string{"rootfs/proc", "rootfs/dev", "rootfs/tmp", "rootfs/sys", "rootfs/bin"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		probe, err := os.ReadFile(s.probe)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "rootfs/bin/probe"), probe, 0o755); err != nil {
			t.Fatal(err)
		}
		spec := specconv.Example()
		spec.Process.Terminal = false
		spec.Process.Args = []string{"/bin/probe", "status"}
		b, _ := json.Marshal(spec)
		if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		before := treeDigest(t, dir)

		r := s.clawosRun(t, "--bundle", dir, "--whitelist", probeWhitelist)
		if r.code != 0 || !strings.Contains(r.stdout, "NoNewPrivs:\t1") || !strings.Contains(r.stdout, "pid 1") {
			t.Errorf("--bundle: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		if r := s.clawosRun(t, "--bundle", dir, "--whitelist", probeWhitelist, "--", "/bin/probe", "call", sysnr(t, "getuid")); r.code != 159 {
			t.Errorf("--bundle with a command: exit %d, want 159 (%s)", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--rootfs", filepath.Join(dir, "rootfs"), "--whitelist", probeWhitelist, "--", "/bin/probe", "write-file", "/tmp/x"); r.code != int(unix.EPERM) {
			t.Errorf("--rootfs: exit %d, want EPERM from the read-only openat rule (%s)", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--rootfs", filepath.Join(dir, "rootfs"), "--whitelist", probeWhitelist, "--", "/bin/nothere"); r.code != 127 {
			t.Errorf("missing command in --rootfs: exit %d (%s)", r.code, r.stderr)
		}
		if after := treeDigest(t, dir); after != before {
			t.Error("clawos-run modified the user's bundle")
		}
	})
}

// treeDigest summarises every path, size, mode and modification time
// under dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %d %v %d\n", p, fi.Size(), fi.Mode(), fi.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestRunRootless runs clawos-run as an unprivileged user (uid 65534): the
// sandbox maps its root to that uid, and the whitelist, the port rules and
// Landlock hold as they do for root.
func TestRunRootless(t *testing.T) {
	s := requireSandbox(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatal("setpriv (util-linux) is missing")
	}
	// Copies in a directory every user can traverse: the clone's own path
	// may not be.
	dir, err := os.MkdirTemp("", "clawos-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct{ src, name string }{{s.run, "clawos-run"}, {filepath.Join(filepath.Dir(s.run), "clawos-init"), "clawos-init"},
		{filepath.Join(filepath.Dir(s.run), "clawos-wait"), "clawos-wait"},
		{filepath.Join(filepath.Dir(s.run), "clawos-policy"), "clawos-policy"}, {s.probe, "clawos-probe"}, {probeWhitelist, "wl.json"},
		{"testdata/tools.whitelist.json", "tools.json"}} {
		b, err := os.ReadFile(f.src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const uid = "65534"
	stateDir := "/tmp/clawos-" + uid
	rootless := func(t *testing.T, runtime string, args ...string) runResult {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "setpriv", append([]string{"--reuid=" + uid, "--regid=" + uid, "--clear-groups", "--",
			filepath.Join(dir, "clawos-run"), "--runtime", runtime, "--whitelist", filepath.Join(dir, "wl.json")}, args...)...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/tmp"}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		r := runResult{stdout: out.String(), stderr: errb.String()}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return r
	}
	probe := filepath.Join(dir, "clawos-probe")
	for _, rt := range runtimes {
		t.Run(rt, func(t *testing.T) {
			r := rootless(t, rt, "--", probe, "status")
			if r.code != 0 {
				t.Fatalf("status: exit %d %s", r.code, r.stderr)
			}
			for _, want := range []string{`(?m)^pid 1$`, `(?m)^NoNewPrivs:\s+1$`, `(?m)^CapEff:\s+0000000000000000$`, `(?m)^uid_map\s+0\s+65534\s+1$`, `(?m)^iface lo$`} {
				if !regexp.MustCompile(want).MatchString(r.stdout) {
					t.Errorf("rootless status lacks %s:\n%s", want, r.stdout)
				}
			}
			for _, c := range []struct {
				args []string
				code int
			}{
				{[]string{"--", probe, "call", sysnr(t, "getuid")}, 159},
				{[]string{"--", probe, "write-file", "/tmp/x"}, int(unix.EPERM)},
				{[]string{"--", probe, "listen-connect", "5432"}, 0},
				{[]string{"--", probe, "listen-connect", "8080"}, refusedTCP()},
				{[]string{"--", probe, "exec", "/bin/true"}, 159}, // start-only exec: the filter kills it
				// Handed off at once where the agent still runs: the
				// user's clawos-wait, and the clean-up as the user.
				{[]string{"--hand-off-after", "0s", "--", probe, "call", sysnr(t, "getuid")}, 159},
				{[]string{"--hand-off-after", "0s", "--", probe, "listen-connect", "8080"}, refusedTCP()},
			} {
				if r := rootless(t, rt, c.args...); r.code != c.code {
					t.Errorf("%v: exit %d, want %d (%s)", c.args, r.code, c.code, r.stderr)
				}
			}
			// The complain supervisor takes the seccomp listener with
			// pidfd_getfd as the unprivileged caller too.
			report := filepath.Join(os.TempDir(), fmt.Sprintf("clawos-complain-%s-%d.json", rt, os.Getpid()))
			defer os.Remove(report)
			if r := rootless(t, rt, "--complain", "--report", report, "--", probe, "call", sysnr(t, "getuid")); r.code != 0 ||
				!regexp.MustCompile(`getuid\s+1\s+KILL_PROCESS`).MatchString(r.stderr) {
				t.Errorf("rootless --complain: exit %d %s", r.code, r.stderr)
			}
			// A workspace: the caller's directory, written by the
			// sandbox's root, which is the caller on the host.
			ws := filepath.Join(dir, "ws-"+rt)
			if err := os.Mkdir(ws, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(ws, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			if r := rootless(t, rt, "--whitelist", filepath.Join(dir, "tools.json"), "--workspace", ws, "--", "/bin/sh", "-c", "echo new > created"); r.code != 0 {
				t.Errorf("rootless --workspace: exit %d %s", r.code, r.stderr)
			} else if fi, err := os.Stat(filepath.Join(ws, "created")); err != nil || fi.Sys().(*syscall.Stat_t).Uid != 65534 {
				t.Errorf("rootless --workspace: the agent's file on the host: %v %v, want owner 65534", fi, err)
			}
			if !namespaces.CgroupV2("/sys/fs/cgroup") {
				if r := rootless(t, rt, "--slice", "agents", "--", probe, "status"); r.code != 125 || !strings.Contains(r.stderr, "cannot manage") {
					t.Errorf("rootless --slice on cgroup v1: exit %d %s", r.code, r.stderr)
				}
			}
			rootlessPasta(t, func(args ...string) runResult { return rootless(t, rt, args...) }, uid, probe)
			if left, _ := filepath.Glob(filepath.Join(stateDir, "bundles", "*")); len(left) > 0 {
				t.Errorf("rootless bundles left behind: %v", left)
			}
		})
	}
}

// rootlessPasta checks --net pasta as the user uid (run runs clawos-run as
// it): where the tun device is usable by the user (Debian's udev makes it
// 0666), a listener on the host's loopback is reached on the allowed port
// through pasta's gateway mapping and refused on another; where it is not,
// the run is refused with EPERM and the reason, and no agent runs. No
// pasta of the user's is left either way.
func rootlessPasta(t *testing.T, run func(args ...string) runResult, uid, probe string) {
	t.Helper()
	gw := hostGateway(t)
	defer hostListeners(t, "5432", "39213")()
	tun := exec.Command("setpriv", "--reuid", uid, "--regid", uid, "--clear-groups", "sh", "-c", "exec 3<>/dev/net/tun").Run() == nil
	for _, c := range []struct {
		port string
		code int
	}{{"5432", 0}, {"39213", refusedTCP()}} {
		r := run("--net", "pasta", "--", probe, "connect", gw, c.port)
		switch {
		case !tun && (r.code != 125 || !strings.Contains(r.stderr, "needs /dev/net/tun") || strings.Contains(r.stdout, "ok")):
			t.Errorf("rootless --net pasta without a usable tun device: exit %d, want 125 and the reason (%s%s)", r.code, r.stdout, r.stderr)
		case tun && r.code != c.code:
			t.Errorf("rootless --net pasta to the host's %s: exit %d, want %d (%s%s)", c.port, r.code, c.code, r.stdout, r.stderr)
		}
	}
	t.Logf("rootless --net pasta, tun device usable by %s: %v", uid, tun)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out, _ := exec.Command("pgrep", "-a", "-u", uid, "-f", "pasta|passt").Output()
		if len(out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the user's pasta still runs: %s", out)
			break
		}
	}
}

// TestRunRefusals checks that bad input never runs an agent.
func TestRunRefusals(t *testing.T) {
	s := requireSandbox(t)
	tampered := filepath.Join(t.TempDir(), "tampered.json")
	b, err := os.ReadFile("../examples/ironclaw.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tampered, bytes.Replace(b, []byte(`"getpid"`), []byte(`"getuid"`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no whitelist", []string{"--", s.probe, "status"}, "--whitelist is required"},
		{"tampered signature", []string{"--whitelist", tampered, "--", s.probe, "status"}, "signature does not match"},
		{"upstream example", []string{"--whitelist", "../translate/testdata/upstream-example.json", "--", s.probe, "status"}, `"recv" is not a Linux syscall`},
		{"missing command", []string{"--whitelist", probeWhitelist, "--", "/nonexistent/agent"}, "not found"},
		{"missing runtime", []string{"--runtime", "/nonexistent/runc", "--whitelist", probeWhitelist, "--", s.probe, "status"}, "not found"},
	} {
		r := s.clawosRun(t, c.args...)
		if r.code < 125 || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stdout, "ok") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", c.name, r.code, r.stdout, r.stderr)
		}
	}
}

// hostIA32 reports whether this kernel delivers i386 system calls.
func hostIA32(t *testing.T, probe string) bool {
	t.Helper()
	has, err := platform.IA32(probe)
	if err != nil {
		t.Fatal(err)
	}
	if !has {
		t.Log(platform.IA32Refused)
	}
	return has
}

// requireKillsI386 fails unless the agent filter clawos-run compiles for wl
// (with the start baseline) kills i386 call nr.
func requireKillsI386(t *testing.T, wl string, nr int32) {
	t.Helper()
	raw, err := os.ReadFile(wl)
	if err != nil {
		t.Fatal(err)
	}
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	w, rep := v.Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	bl, err := translate.ParseBaselines("start")
	if err != nil {
		t.Fatal(err)
	}
	st, err := translate.TwoStage(w, translate.Options{Baselines: bl}, "runc")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*translate.Profile{st.Agent, st.Container} {
		prog, err := seccomp.Compile(p.Seccomp)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := seccomp.NewEvaluator(prog)
		if err != nil {
			t.Fatal(err)
		}
		if v := ev.Evaluate(seccomp.Input{Arch: auditArchI386, Nr: nr}); v.Action() != seccomp.RetKillProcess {
			t.Errorf("the compiled filter would %v i386 call %d, want a kill", v, nr)
		}
	}
}

// TestRunSecretFiles checks that what holds the agent's environment (a
// secret given with --env) is readable by its owner only while the agent
// runs, under both runtimes: every file under the state directory that
// contains the secret is mode 0600 or stricter and unreadable to another
// user (read as uid 65534 fails), and the embedded runtime writes no such
// file at all (the agent has the secret); and that clawos-run changes the modes of
// the directories it creates only: a sticky, world-writable parent of
// --state-dir or --write-bundle keeps its mode.
func TestRunSecretFiles(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		secret := fmt.Sprintf("clawos-secret-%d-%s", os.Getpid(), s.runtime)
		cmd := s.start(t, "--kill-after", "100ms", "--env", "API_KEY="+secret, "--whitelist", probeWhitelist, "--", s.probe, "ready")
		defer func() { cmd.Process.Signal(unix.SIGTERM); cmd.Wait() }()
		found := 0
		filepath.WalkDir(s.stateDir, func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil || !bytes.Contains(b, []byte(secret)) {
				return nil
			}
			found++
			fi, _ := os.Stat(p)
			if fi.Mode().Perm()&0o077 != 0 {
				t.Errorf("%s holds the agent's environment and is mode %v", p, fi.Mode().Perm())
			}
			if out, err := exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "cat", p).CombinedOutput(); err == nil {
				t.Errorf("uid 65534 read %s: %s", p, out)
			}
			return nil
		})
		switch {
		case s.runtime == "embedded" && found != 0:
			t.Errorf("%d files under %s hold the environment: the embedded runtime takes the spec from memory and writes none", found, s.stateDir)
		case s.runtime == "embedded":
			// Nothing found: proved only if the agent has the secret.
			out, _ := exec.Command("pgrep", "-f", "clawos-probe ready").Output()
			seen := false
			for _, pid := range strings.Fields(string(out)) {
				if env, err := os.ReadFile("/proc/" + pid + "/environ"); err == nil && bytes.Contains(env, []byte(secret)) {
					seen = true
				}
			}
			if !seen {
				t.Fatal("the agent's environment lacks the secret: the check above proved nothing")
			}
		case found == 0:
			t.Fatalf("no file under %s holds the environment: the check above proved nothing", s.stateDir)
		}

		parent := filepath.Join(os.TempDir(), "clawos-sticky-"+s.runtime)
		os.RemoveAll(parent)
		if err := os.Mkdir(parent, 0o777); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(parent)
		if err := os.Chmod(parent, os.ModeSticky|0o777); err != nil {
			t.Fatal(err)
		}
		state := filepath.Join(parent, "state")
		if r := runSplit(t, 60*time.Second, s.run, "--state-dir", state, "--runtime", s.runtime, "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid")); r.code != 0 {
			t.Fatalf("run with --state-dir %s: exit %d: %s", state, r.code, r.stderr)
		}
		if r := runSplit(t, 60*time.Second, s.run, "--write-bundle", filepath.Join(parent, "bundle"), "--state-dir", state, "--whitelist", probeWhitelist, "--", s.probe, "status"); r.code != 0 {
			t.Fatalf("--write-bundle: exit %d: %s", r.code, r.stderr)
		}
		fi, err := os.Stat(parent)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&(os.ModeSticky|os.ModePerm) != os.ModeSticky|0o777 {
			t.Errorf("the sticky parent of --state-dir and --write-bundle is now %v, want it untouched (drwxrwxrwt)", fi.Mode())
		}
		if fi, err := os.Stat(filepath.Join(parent, "bundle", "config.json")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("--write-bundle's config.json: %v %v, want mode 0600", fi.Mode(), err)
		}
		if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o711 {
			t.Errorf("the state directory clawos-run created: %v %v, want 0711", fi.Mode(), err)
		}
		// Mount points inside /dev's tmpfs are the runtime's to make
		// there (the run above had /dev/pts and /dev/.clawos); the bundle
		// holds /dev itself only.
		rootfs := filepath.Join(parent, "bundle", "rootfs")
		if _, err := os.Stat(filepath.Join(rootfs, "dev")); err != nil {
			t.Errorf("the bundle's /dev mount point: %v", err)
		}
		for _, d := range []string{"dev/pts", "dev/shm", "dev/.clawos"} {
			if _, err := os.Lstat(filepath.Join(rootfs, d)); !os.IsNotExist(err) {
				t.Errorf("the bundle holds %s, hidden under /dev's tmpfs (%v)", d, err)
			}
		}
	})
}

// TestRunTerminalNotInherited checks that an agent without --tty never gets
// the caller's terminal, under both runtimes: clawos-run runs inside a pty
// (script(1)) whose input holds what the user "types"; the agent's stdin
// reads end of file at once (it is /dev/null), its stdout is a pipe it
// cannot read from (EBADF; a terminal is open read-write), and /dev/tty
// does not open (ENXIO: clawos-init made it a session of its own).
func TestRunTerminalNotInherited(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		script, err := exec.LookPath("script")
		if err != nil {
			t.Fatalf("script (util-linux) is missing: %v", err)
		}
		for _, c := range []struct {
			op   string
			code int
		}{
			{"read 0", int(unix.ENODATA)},
			{"read 1", int(unix.EBADF)},
			{"read 2", int(unix.EBADF)},
			{"open-tty", int(unix.ENXIO)},
		} {
			t.Run(c.op, func(t *testing.T) {
				line := strings.Join(append([]string{s.run}, s.flags()...), " ") + " --whitelist " + probeWhitelist + " -- " + s.probe + " " + c.op
				cmd := exec.Command(script, "-qec", line, "/dev/null")
				cmd.Stdin = strings.NewReader("typed-by-the-user\n")
				out, err := cmd.CombinedOutput()
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != c.code {
					t.Errorf("%s in a terminal: exit %d, want %d\n%s", c.op, code, c.code, out)
				}
			})
		}
	})
}

// agentOf finds the host pid of the sandbox id's agent (its pid 1): the
// process whose cgroup path names the id. It returns a pidfd for it.
func agentOf(t *testing.T, id string) int {
	t.Helper()
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("/"+id)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue
		}
		return fd
	}
	t.Fatalf("no process in a cgroup of %s", id)
	return -1
}

// waitGone waits, bounded, for the process of pidfd to exit: a pidfd
// polls readable when it does.
func waitGone(t *testing.T, pidfd int, what string) {
	t.Helper()
	defer unix.Close(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10000)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("%s is still running 10 s later", what)
	}
}

// TestRunOwnerUnderAnotherName checks that a sandbox whose clawos-run runs
// under another program name (a symlink, a renamed copy) is not taken for
// a stale one by the next clawos-run, under both runtimes: its agent keeps
// running, its bundle stays.
func TestRunOwnerUnderAnotherName(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		dir := t.TempDir()
		link := filepath.Join(dir, "my-sandbox")
		if err := os.Symlink(s.run, link); err != nil {
			t.Fatal(err)
		}
		renamed := s
		renamed.run = link
		id := "clawos-test-renamed-" + s.runtime
		cmd := renamed.start(t, "--id", id, "--kill-after", "100ms", "--whitelist", probeWhitelist, "--", s.probe, "ready")
		defer func() { cmd.Process.Signal(unix.SIGTERM); cmd.Wait() }()
		agent := agentOf(t, id)
		defer unix.Close(agent)
		if r := s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid")); r.code != 0 {
			t.Fatalf("second run: exit %d: %s", r.code, r.stderr)
		}
		if err := unix.PidfdSendSignal(agent, 0, nil, 0); err != nil {
			t.Errorf("the live sandbox's agent was killed by the next run: %v", err)
		}
		if _, err := os.Stat(filepath.Join(s.stateDir, "bundles", id)); err != nil {
			t.Errorf("the live sandbox's bundle was removed by the next run: %v", err)
		}
	})
}

// TestRunReadOnlyRecursive checks that read-only views are read-only all
// the way down, under both runtimes: a writable mount under a --ro-bind
// source, or under a system directory of the host view, is read-only in the
// sandbox too (EROFS).
func TestRunReadOnlyRecursive(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		src := ownedDir(t)
		sub := filepath.Join(src, "sub")
		sys := "/usr/local/lib/clawos-rro-test-" + s.runtime
		for _, d := range []string{sub, sys} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			// The bind's owner's, as what is under a writable bind must be
			// to be written through its idmapped mount (a root-owned 1777
			// tmpfs there gave EACCES).
			if err := unix.Mount("tmpfs", d, "tmpfs", 0, fmt.Sprintf("size=1m,uid=%d,gid=%d", testUser, testUser)); err != nil {
				t.Fatal(err)
			}
			defer func(d string) {
				unix.Unmount(d, unix.MNT_DETACH)
				os.Remove(d)
			}(d)
		}
		wl := "../examples/ironclaw.whitelist.json" // allows write opens
		for _, c := range []struct {
			name string
			args []string
			code int
		}{
			{"a mount under a --ro-bind source", []string{"--ro-bind", src + ":/data", "--", s.probe, "write-file", "/data/sub/x"}, int(unix.EROFS)},
			{"the --ro-bind itself", []string{"--ro-bind", src + ":/data", "--", s.probe, "write-file", "/data/x"}, int(unix.EROFS)},
			{"a mount under a system directory", []string{"--", s.probe, "write-file", sys + "/x"}, int(unix.EROFS)},
			{"a mount under a writable --bind stays writable", []string{"--bind", src + ":/data", "--", s.probe, "write-file", "/data/sub/x"}, 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := s.clawosRun(t, append([]string{"--whitelist", wl}, c.args...)...)
				if r.code != c.code {
					t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
				}
			})
		}
	})
}

// TestRunWorkdirManaged checks that the caller's directory is never bound
// over a path the sandbox manages, nor a home directory implicitly, under
// both runtimes: started from /proc, /etc, /dev, /run or a home, the agent
// starts in / (and clawos-run says why) instead of seeing the host's.
func TestRunWorkdirManaged(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		for _, dir := range []string{"/proc", "/etc", "/dev", "/run", "/root"} {
			t.Run(dir, func(t *testing.T) {
				wl, err := filepath.Abs(probeWhitelist)
				if err != nil {
					t.Fatal(err)
				}
				cmd := exec.Command(s.run, append(s.flags(), "--whitelist", wl, "--", s.probe, "cwd")...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "HOME=/root")
				var out, errb bytes.Buffer
				cmd.Stdout, cmd.Stderr = &out, &errb
				if err := cmd.Run(); err != nil {
					t.Fatalf("from %s: %v\n%s", dir, err, errb.String())
				}
				if got := strings.TrimSpace(out.String()); got != "/\nok" && !strings.HasPrefix(got, "/\n") {
					t.Errorf("from %s the agent starts in %q, want /", dir, got)
				}
				if !strings.Contains(errb.String(), "not made visible") {
					t.Errorf("from %s clawos-run does not say why: %s", dir, errb.String())
				}
			})
		}
	})
}

// TestInitSanitized runs clawos-init built with AddressSanitizer and UBSan
// (make's bin/clawos-init-san) in real sandboxes, under both runtimes: the
// exec-restriction path that reads the command's ELF headers and #! lines
// (a dynamic program, a script, a bare name searched in $PATH), and the
// filter it loads. The container stage only logs (--measure-runtime), since
// the sanitizers' own start-up calls are not in clawos-init's baseline; the
// agent's filter stays exact. clawos-wait is the sanitized one too
// (bin/clawos-wait-san). Any sanitizer report fails the test.
func TestInitSanitized(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		dir := t.TempDir()
		run := filepath.Join(dir, "clawos-run")
		for src, dst := range map[string]string{s.run: run, built(t, "../bin/clawos-init-san"): filepath.Join(dir, "clawos-init"),
			built(t, "../bin/clawos-wait-san"):                  filepath.Join(dir, "clawos-wait"),
			filepath.Join(filepath.Dir(s.run), "clawos-policy"): filepath.Join(dir, "clawos-policy")} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		san := s
		san.run = run
		wl := "../examples/ironclaw.whitelist.json"
		for _, c := range []struct {
			name string
			args []string
			code int
		}{
			{"static probe, allowed call", []string{"--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid")}, 0},
			{"static probe, DENY", []string{"--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "kill"), "1", "0"}, int(unix.EPERM)},
			{"dynamic program through its ELF interpreter", []string{"--whitelist", wl, "--", "/usr/bin/true"}, 0},
			{"a #! script and its interpreter", []string{"--whitelist", wl, "--", "/usr/bin/ldd", "--version"}, -1},
			{"--init: pid 1 reaps an orphan", []string{"--init", "--whitelist", "testdata/init.whitelist.json", "--", s.probe, "orphan"}, 0},
		} {
			t.Run(c.name, func(t *testing.T) {
				// Handed off at once: the sanitized clawos-wait waits (the
				// embedded runtime).
				r := san.clawosRun(t, append([]string{"--measure-runtime", "--baseline", "start", "--hand-off-after", "0s"}, c.args...)...)
				noSanitizerReport(t, r.stderr)
				if c.code >= 0 && r.code != c.code {
					t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
				}
			})
		}
	})
}

// TestRunExecAttacks runs test/attacks/exec.c's attempts to start another
// program under a whitelist that does not allow execve, under both
// runtimes: through the dynamic loader (which a dynamic agent's own start
// needs executable), a memfd executed through /proc/self/fd, a pathname
// mapped at a guessed address, and a plain execve. Each must be killed at
// execve by the agent filter (159, the kernel naming execve); nothing may
// print "escaped".
func TestRunExecAttacks(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		attack := built(t, "../bin/clawos-attack-exec")
		const wl = "testdata/exec-attacks.whitelist.json"
		for _, args := range [][]string{
			{"ldso", "/usr/bin/true"},
			{"ldso", attack},
			{"memfd", attack},
			{"guess"},
			{"direct", attack},
			{"direct", "/bin/sh"},
		} {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				r := s.clawosRun(t, append([]string{"--whitelist", wl, "--", attack}, args...)...)
				if strings.Contains(r.stdout, "escaped") || r.code == 66 {
					t.Fatalf("another program started: exit %d\n%s", r.code, r.stdout)
				}
				if r.code != 128+int(unix.SIGSYS) || !strings.Contains(r.stderr, "syscall=execve") {
					t.Errorf("exit %d, want a seccomp kill at execve (159)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
				}
			})
		}
		// Where the whitelist allows execve, programs of the read-only view
		// run and nothing from a writable place does: /tmp, /dev and a
		// writable bind are noexec (the loader cannot map a payload from
		// them either), a memfd is not executable (vm.memfd_noexec 2, where
		// the kernel has it), and Landlock keeps execution to the
		// read-only view: clawos-init's own directory (a read-only bind
		// without noexec) is outside it.
		const allowed = "testdata/exec-attacks-allowed.whitelist.json"
		_, memfdErr := os.Stat("/proc/sys/vm/memfd_noexec")
		ws := ownedDir(t)
		const eacces = int(unix.EACCES)
		for _, c := range []struct {
			args []string
			code int // 0: anything but an escape; 66: the program runs
		}{
			{[]string{"direct", attack}, 66},
			{[]string{"ldso-tmp", attack}, 0},
			// Without vm.memfd_noexec clawos-run refuses this whitelist.
			{[]string{"memfd", attack}, map[bool]int{true: eacces, false: 125}[memfdErr == nil]},
			{[]string{"copy", attack, "/tmp/payload"}, eacces},
			{[]string{"copy", attack, "/dev/payload"}, eacces},
			{[]string{"copy", attack, "/ws/payload"}, eacces},
			{[]string{"direct", confine.Init}, eacces},
			// noexec alone, without Landlock's second layer.
			{[]string{"--landlock", "off", "copy", attack, "/tmp/payload"}, eacces},
			{[]string{"--landlock", "off", "copy", attack, "/dev/payload"}, eacces},
			{[]string{"--landlock", "off", "copy", attack, "/ws/payload"}, eacces},
		} {
			t.Run("execve allowed: "+strings.Join(c.args, " "), func(t *testing.T) {
				args := []string{"--whitelist", allowed, "--bind", ws + ":/ws"}
				if c.args[0] == "--landlock" {
					args, c.args = append(args, c.args[:2]...), c.args[2:]
				}
				r := s.clawosRun(t, append(append(args, "--", attack), c.args...)...)
				escaped := strings.Contains(r.stdout, "escaped") || r.code == 66
				switch {
				case c.code == 66 && !escaped:
					t.Errorf("a program of the read-only view did not run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
				case c.code != 66 && escaped:
					t.Fatalf("a program from a writable place or outside the read-only view started: exit %d\n%s", r.code, r.stdout)
				case c.code != 0 && c.code != 66 && r.code != c.code:
					t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
				}
			})
		}
	})
}

// TestRunBaselineNarrow checks that the start baseline does not widen a
// small whitelist beyond what the measured programs need, under both
// runtimes: with only write and exit_group allowed, the agent starts, may
// clone a child and open a file to read (the baseline's conditions), and
// is killed for a clone with namespace flags and for an open that writes.
func TestRunBaselineNarrow(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		const wl = "testdata/minimal.whitelist.json"
		const kill = 128 + int(unix.SIGSYS)
		for _, c := range []struct {
			name string
			args []string
			code int
		}{
			{"clone without namespace flags", []string{"call", sysnr(t, "clone"), strconv.Itoa(int(unix.SIGCHLD))}, -1},
			{"clone with CLONE_NEWUSER", []string{"call", sysnr(t, "clone"), strconv.Itoa(unix.CLONE_NEWUSER | int(unix.SIGCHLD))}, kill},
			{"clone with CLONE_NEWNET", []string{"call", sysnr(t, "clone"), strconv.Itoa(unix.CLONE_NEWNET | int(unix.SIGCHLD))}, kill},
			{"openat read-only", []string{"open", "/etc/hosts", strconv.Itoa(unix.O_RDONLY | unix.O_CLOEXEC)}, 0},
			{"openat for writing", []string{"write-file", "/tmp/x"}, kill},
			{"openat O_RDONLY|O_CREAT", []string{"open", "/tmp/y", strconv.Itoa(unix.O_RDONLY | unix.O_CREAT)}, kill},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := s.clawosRun(t, append([]string{"--whitelist", wl, "--", s.probe}, c.args...)...)
				switch {
				case c.code == -1 && r.code == kill:
					t.Errorf("killed: %s", r.stderr)
				case c.code >= 0 && r.code != c.code:
					t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, c.code, r.stdout, r.stderr)
				}
			})
		}
	})
}

// TestRunLandlockModes checks --landlock on this kernel (which has
// Landlock; the refusals without it are TestLandlockMode's and the VM
// matrix's), under both runtimes: with a whitelist that allows execve,
// auto and required keep execution to the read-only view (clawos-init's
// directory, a read-only bind outside it: EACCES; a system program runs)
// and off does not; --print-spec records the state and the exec mode; with
// start-only exec the mode says so.
func TestRunLandlockModes(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		const wl = "testdata/exec-allowed.whitelist.json"
		busybox, err := exec.LookPath("busybox")
		if err != nil {
			t.Fatalf("busybox (busybox-static) is missing: %v", err)
		}
		for _, c := range []struct {
			mode    string
			blocked bool
		}{{"auto", true}, {"required", true}, {"off", false}} {
			r := s.clawosRun(t, "--landlock", c.mode, "--whitelist", wl, "--", s.probe, "exec", confine.Init)
			if got := r.code == int(unix.EACCES); got != c.blocked {
				t.Errorf("--landlock %s: exec of a program outside the read-only view: exit %d (EACCES %v, want %v)\n%s", c.mode, r.code, got, c.blocked, r.stderr)
			}
			// busybox runs (and dies of its first call this whitelist does
			// not list, getuid: it got past the execve).
			if r := s.clawosRun(t, "--landlock", c.mode, "--whitelist", wl, "--", s.probe, "exec", busybox); r.code == int(unix.EACCES) || strings.Contains(r.stderr, "syscall=execve") || !strings.Contains(r.stderr, "syscall=") {
				t.Errorf("--landlock %s: exec of a program of the read-only view: exit %d\n%s", c.mode, r.code, r.stderr)
			}
		}
		spec := func(wl, mode string) map[string]any {
			r := s.clawosRun(t, "--print-spec", "--landlock", mode, "--whitelist", wl, "--", s.probe, "status")
			var out map[string]any
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
				t.Fatalf("--print-spec: %v\n%s", err, r.stderr)
			}
			return out
		}
		if out := spec(wl, "auto"); !strings.HasPrefix(fmt.Sprint(out["landlock"]), "applied (ABI ") || !strings.HasPrefix(fmt.Sprint(out["exec"]), "allowed") {
			t.Errorf("--print-spec, exec allowed, auto: landlock %q, exec %q", out["landlock"], out["exec"])
		}
		if out := spec(wl, "off"); out["landlock"] != "off" {
			t.Errorf("--print-spec, off: landlock %q", out["landlock"])
		}
		if out := spec(probeWhitelist, "auto"); !strings.HasPrefix(fmt.Sprint(out["exec"]), "start-only") {
			t.Errorf("--print-spec, start-only: exec %q", out["exec"])
		}
		if r := s.clawosRun(t, "--landlock", "maybe", "--whitelist", wl, "--", s.probe, "status"); r.code != 125 || !strings.Contains(r.stderr, "Landlock mode") {
			t.Errorf("--landlock maybe: exit %d %s", r.code, r.stderr)
		}
	})
}

// TestRunCheck checks clawos-run --check against the platform probe run
// here: the ia32 row says what the kernel does with int 0x80, and
// --apparmor required and --landlock required fail exactly where this
// kernel cannot meet them.
func TestRunCheck(t *testing.T) {
	s := requireSandbox(t)
	rep := platform.Probe(func() (bool, error) { return platform.IA32(s.probe) })
	r := runSplit(t, 60*time.Second, s.run, "--check")
	if r.code != 0 {
		t.Fatalf("--check: exit %d\n%s", r.code, r.stderr)
	}
	for _, row := range rep.Rows() {
		if !strings.Contains(r.stdout, row[0]) || !strings.Contains(r.stdout, row[1]) {
			t.Errorf("--check lacks %q = %q:\n%s", row[0], row[1], r.stdout)
		}
	}
	for _, c := range []struct {
		flag string
		fail bool
	}{{"--apparmor=required", !rep.AppArmor}, {"--landlock=required", rep.Landlock == 0}} {
		r := runSplit(t, 60*time.Second, s.run, "--check", c.flag)
		if (r.code != 0) != c.fail {
			t.Errorf("--check %s: exit %d, want failure %v\n%s", c.flag, r.code, c.fail, r.stderr)
		}
	}
}

// TestRunEnvAndLearnRefusals checks, under both runtimes, --env K (the
// caller's value, refused when unset: clawos-run's usage error, never a
// failure deep in the runtime) and learn mode's refusals: a failed run
// writes nothing unless --learn-failed, and an existing OUT is replaced
// only with --force.
func TestRunEnvAndLearnRefusals(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		t.Setenv("CLAWOS_TEST_TOKEN", "from-the-caller")
		if r := s.clawosRun(t, "--env", "CLAWOS_TEST_TOKEN", "--whitelist", probeWhitelist, "--", s.probe, "env", "CLAWOS_TEST_TOKEN"); r.code != 0 || !strings.Contains(r.stdout, "CLAWOS_TEST_TOKEN=from-the-caller") {
			t.Errorf("--env K: exit %d %s %s", r.code, r.stdout, r.stderr)
		}
		if r := s.clawosRun(t, "--env", "CLAWOS_TEST_UNSET", "--whitelist", probeWhitelist, "--", s.probe, "status"); r.code != 125 || !strings.Contains(r.stderr, "CLAWOS_TEST_UNSET is not set") {
			t.Errorf("--env of an unset variable: exit %d %s", r.code, r.stderr)
		}
		out := filepath.Join(t.TempDir(), "learned.json")
		if r := s.clawosRun(t, "--learn", out, "--", s.probe, "call", sysnr(t, "exit_group"), "3"); r.code == 0 || !strings.Contains(r.stderr, "exited with status 3") {
			t.Errorf("learn of a failed run: exit %d %s", r.code, r.stderr)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("learn wrote %s from a failed run", out)
		}
		if r := s.clawosRun(t, "--learn", out, "--learn-failed", "--", s.probe, "call", sysnr(t, "exit_group"), "3"); r.code != 3 {
			t.Errorf("--learn-failed: exit %d %s", r.code, r.stderr)
		}
		if _, err := os.Stat(out); err != nil {
			t.Errorf("--learn-failed wrote nothing: %v", err)
		}
		if r := s.clawosRun(t, "--learn", out, "--", s.probe, "call", sysnr(t, "getpid")); r.code != 125 || !strings.Contains(r.stderr, "the file exists") {
			t.Errorf("learn over an existing file: exit %d %s", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--learn", out, "--force", "--", s.probe, "call", sysnr(t, "getpid")); r.code != 0 {
			t.Errorf("--force: exit %d %s", r.code, r.stderr)
		}
	})
}

// TestRunChdir checks --chdir (the agent's directory inside the sandbox,
// bubblewrap's name) and that an explicit --workdir never binds the host's
// directory over one the sandbox manages, under both runtimes.
func TestRunChdir(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		app := t.TempDir()
		os.Chmod(app, 0o755)
		r := s.clawosRun(t, "--ro-bind", app+":/app", "--chdir", "/app", "--whitelist", probeWhitelist, "--", s.probe, "cwd")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "/app\n") {
			t.Errorf("--chdir /app after --ro-bind X:/app: exit %d %q %s", r.code, r.stdout, r.stderr)
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--workdir", "/etc/apt"}, "would bind the host's directory over the sandbox's own"},
			{[]string{"--workdir", "/proc"}, "would bind the host's directory over the sandbox's own"},
			{[]string{"--chdir", "/app", "--workdir", "/srv"}, "excludes --workdir"},
			{[]string{"--chdir", "app"}, "absolute path"},
		} {
			r := s.clawosRun(t, append(append([]string{}, c.args...), "--whitelist", probeWhitelist, "--", s.probe, "cwd")...)
			if r.code != 125 || !strings.Contains(r.stderr, c.want) {
				t.Errorf("%v: exit %d, want 125 saying %q: %s", c.args, r.code, c.want, r.stderr)
			}
		}
	})
}

// TestRunCommandInSandboxView: the command is looked up in the sandbox's
// own view, as bubblewrap does: through a bind, in the sandbox's PATH (its
// default or --env's), never in the caller's PATH (issue 15, item 1:
// `--ro-bind agent:/app/agent -- /app/agent` said "command not found", and
// a pyenv shim of the caller's PATH was mounted and run).
func TestRunCommandInSandboxView(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		if r := s.clawosRun(t, "--ro-bind", s.probe+":/app/agent", "--whitelist", probeWhitelist, "--", "/app/agent", "cwd"); r.code != 0 {
			t.Errorf("a command bound at /app/agent: exit %d %s", r.code, r.stderr)
		}
		if r := s.clawosRun(t, "--ro-bind", filepath.Dir(s.probe)+":/app/bin", "--env", "PATH=/app/bin", "--whitelist", probeWhitelist,
			"--", "clawos-probe", "cwd"); r.code != 0 {
			t.Errorf("a bare name in --env's PATH, through a bind: exit %d %s", r.code, r.stderr)
		}
		// A shim first in the caller's PATH: the sandbox runs its own true.
		shims := t.TempDir()
		os.Chmod(shims, 0o755)
		if err := os.WriteFile(filepath.Join(shims, "true"), []byte("#!/bin/sh\nexit 42\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		callerPATH := "PATH=" + shims + ":" + filepath.Dir(s.probe) + ":" + os.Getenv("PATH")
		run := func(args ...string) (int, string) {
			cmd := exec.Command(s.run, append(append(s.flags(), "--whitelist", probeWhitelist, "--"), args...)...)
			cmd.Env = append(os.Environ(), callerPATH)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				t.Fatal(err)
			}
			return cmd.ProcessState.ExitCode(), stderr.String()
		}
		if code, stderr := run("true"); code != 0 {
			t.Errorf("true with a shim first in the caller's PATH: exit %d (the shim exits 42) %s", code, stderr)
		}
		// The caller's PATH has clawos-probe; the sandbox's does not.
		if code, stderr := run("clawos-probe", "cwd"); code != 127 || !strings.Contains(stderr, "not found in the sandbox's PATH") {
			t.Errorf("a bare name only the caller's PATH has: exit %d, want 127 naming the sandbox's PATH: %s", code, stderr)
		}
	})
}

// TestRunTools checks an agent that runs tools, under both runtimes: with a
// whitelist that allows execve, a shell agent runs an env #! script of a
// read-only bind, which runs a subprocess (/usr/bin/id); the same script
// copied to a writable place (/tmp, a writable bind) does not execute
// (EACCES: the shell's 126); with the same whitelist without execve, the
// shell is killed at the script's execve.
func TestRunTools(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		tools, ws := t.TempDir(), ownedDir(t)
		if err := os.WriteFile(filepath.Join(tools, "tool.sh"), []byte("#!/usr/bin/env sh\necho \"tool: uid $(/usr/bin/id -u)\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{tools, ws} {
			if err := os.Chmod(d, 0o777); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []struct {
			name, wl, script string
			code             int
			out              string
		}{
			{"env script of a read-only bind runs a subprocess", "testdata/tools.whitelist.json", "/tools/tool.sh", 0, "tool: uid 0\n"},
			{"copied to /tmp", "testdata/tools.whitelist.json", "cp /tools/tool.sh /tmp/t.sh && /tmp/t.sh", 126, ""},
			{"copied to a writable bind", "testdata/tools.whitelist.json", "cp /tools/tool.sh /ws/t.sh && /ws/t.sh", 126, ""},
			{"whitelist without execve", "testdata/tools-noexec.whitelist.json", "exec /tools/tool.sh", 128 + int(unix.SIGSYS), ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := s.clawosRun(t, "--whitelist", c.wl, "--ro-bind", tools+":/tools", "--bind", ws+":/ws", "--", "/bin/sh", "-c", c.script)
				if r.code != c.code || r.stdout != c.out {
					t.Fatalf("exit %d, stdout %q; want %d, %q\nstderr: %s", r.code, r.stdout, c.code, c.out, r.stderr)
				}
				switch {
				case c.code == 126 && !strings.Contains(r.stderr, "Permission denied"):
					t.Errorf("want the shell's EACCES message: %s", r.stderr)
				case c.code == 128+int(unix.SIGSYS) && !strings.Contains(r.stderr, "syscall=execve"):
					t.Errorf("want a kill at execve: %s", r.stderr)
				}
			})
		}
	})
}

// TestRunWorkspace checks --workspace as root, under both runtimes: the
// agent starts in the workspace, writes there although the directory is
// an unprivileged user's and not world-writable (an idmapped mount: the
// owner's files are the sandbox root's), and what it writes belongs to that
// owner on the host; a root-owned workspace is refused (the agent could
// leave a setuid-root program there); the workspace's .git, and the git
// directory a .git file names, are read-only (EROFS); a workspace over a
// sandbox-managed path is refused.
func TestRunWorkspace(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		const wl = "testdata/tools.whitelist.json"
		ws := t.TempDir()
		if err := os.MkdirAll(filepath.Join(ws, ".git"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"mine", ".git/config"} {
			if err := os.WriteFile(filepath.Join(ws, f), []byte("original\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		// Root's workspace is refused: the agent, owning what it writes,
		// could leave a setuid-root program there for the host.
		if r := s.clawosRun(t, "--whitelist", wl, "--workspace", ws, "--", "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "setuid-root") {
			t.Errorf("a root-owned workspace: exit %d\n%s", r.code, r.stderr)
		}
		chownUser(t, ws, filepath.Join(ws, ".git"), filepath.Join(ws, "mine"), filepath.Join(ws, ".git/config"))
		// A state directory that does not exist yet (a fresh machine's
		// first run): what is staged in it must leave it traversable.
		fresh := s
		fresh.stateDir = filepath.Join(s.stateDir, fmt.Sprintf("fresh-%d-%s", os.Getpid(), s.runtime))
		defer os.RemoveAll(fresh.stateDir)
		r := fresh.clawosRun(t, "--whitelist", wl, "--workspace", ws, "--", "/bin/sh", "-c",
			`pwd; echo new > created && echo more >> mine && echo ok; echo evil >> .git/config || echo git-refused`)
		if r.code != 0 || r.stdout != ws+"\nok\ngit-refused\n" || !strings.Contains(r.stderr, "Read-only file system") {
			t.Fatalf("exit %d, stdout %q, want %q\nstderr: %s", r.code, r.stdout, ws+"\nok\ngit-refused\n", r.stderr)
		}
		for f, want := range map[string]string{"created": "new\n", "mine": "original\nmore\n", ".git/config": "original\n"} {
			b, err := os.ReadFile(filepath.Join(ws, f))
			if err != nil || string(b) != want {
				t.Errorf("%s on the host: %q (%v), want %q", f, b, err, want)
			}
			fi, err := os.Stat(filepath.Join(ws, f))
			if err != nil {
				t.Fatal(err)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Uid != testUser || st.Gid != testUser {
				t.Errorf("%s on the host is owned by %d:%d, want the workspace owner's %d:%d", f, st.Uid, st.Gid, testUser, testUser)
			}
		}
		// A worktree: .git is a file naming a git directory elsewhere,
		// which is visible read-only at its own path.
		wt, gd := ownedDir(t), t.TempDir()
		if err := os.WriteFile(filepath.Join(wt, ".git"), []byte("gitdir: "+gd+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		chownUser(t, filepath.Join(wt, ".git"))
		if err := os.WriteFile(filepath.Join(gd, "HEAD"), []byte("ref: refs/heads/main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r = s.clawosRun(t, "--whitelist", wl, "--workspace", wt, "--", "/bin/sh", "-c",
			`read h < `+gd+`/HEAD && echo "$h"; echo x > `+gd+`/HEAD || echo gitdir-refused; echo x > .git || echo gitfile-refused`)
		if want := "ref: refs/heads/main\ngitdir-refused\ngitfile-refused\n"; r.code != 0 || r.stdout != want {
			t.Errorf("worktree: exit %d, stdout %q, want %q\nstderr: %s", r.code, r.stdout, want, r.stderr)
		}
		for _, dir := range []string{"/proc", "/tmp", "/etc"} {
			if r := s.clawosRun(t, "--whitelist", wl, "--workspace", dir, "--", "/bin/true"); r.code != 125 || !strings.Contains(r.stderr, "workspace") {
				t.Errorf("--workspace %s: exit %d, %s", dir, r.code, r.stderr)
			}
		}
	})
}

// TestRunInit checks --init under both runtimes: clawos-init stays as pid
// 1 and reaps an orphan that, without --init, stays a zombie of the agent
// (pid 1); a SIGTERM to clawos-run reaches an agent without handlers
// through pid 1 and kills it (143: without --init the kernel drops it at
// the agent, pid 1, and only --kill-after's SIGKILL ends it, 137); a
// seccomp kill of the agent, pid 1's child, is still 159 and names the
// syscall; the agent cannot open pid 1's memory, with or without Landlock.
func TestRunInit(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		const wl = "testdata/init.whitelist.json"
		for _, c := range []struct {
			init bool
			out  string
			code int
		}{{true, "reaped\n", 0}, {false, "zombie\n", 1}} {
			args := []string{"--whitelist", wl, "--", s.probe, "orphan"}
			if c.init {
				args = append([]string{"--init"}, args...)
			}
			if r := s.clawosRun(t, args...); r.code != c.code || r.stdout != c.out {
				t.Errorf("--init %v: orphan: exit %d %q, want %d %q\n%s", c.init, r.code, r.stdout, c.code, c.out, r.stderr)
			}
		}
		for _, c := range []struct {
			init bool
			code int
		}{{true, 128 + int(unix.SIGTERM)}, {false, 128 + int(unix.SIGKILL)}} {
			args := []string{"--kill-after", "2s", "--whitelist", wl, "--", s.probe, "ready"}
			if c.init {
				args = append([]string{"--init", "--kill-after", "60s"}, args...)
			}
			cmd := s.start(t, args...)
			if err := cmd.Process.Signal(unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != c.code {
				t.Errorf("--init %v: SIGTERM to an agent without handlers: %v, want exit %d", c.init, err, c.code)
			}
		}
		r := s.clawosRun(t, "--init", "--whitelist", wl, "--", s.probe, "call", sysnr(t, "getuid"))
		if r.code != 128+int(unix.SIGSYS) || !strings.Contains(r.stderr, "syscall=getuid") {
			t.Errorf("--init: a seccomp kill: exit %d, want 159 naming getuid\n%s", r.code, r.stderr)
		}
		// Pid 1 runs outside the agent's filter: the agent must not reach
		// its memory (to write code there), by /proc/1/mem or ptrace. It
		// is not dumpable; Landlock (a domain cannot trace a process
		// outside it) is a second layer, off here to show the first.
		for _, ll := range []string{"auto", "off"} {
			if r := s.clawosRun(t, "--init", "--landlock", ll, "--whitelist", wl, "--", s.probe, "open", "/proc/1/mem", "0"); r.code != int(unix.EACCES) {
				t.Errorf("--init --landlock %s: the agent opened pid 1's memory: exit %d %s", ll, r.code, r.stdout)
			}
		}
		if r := s.clawosRun(t, "--init", "--learn", filepath.Join(t.TempDir(), "x.json"), "--", s.probe, "status"); r.code != 125 {
			t.Errorf("--init --learn: exit %d, want a usage error\n%s", r.code, r.stderr)
		}
	})
}

// testUser owns the directories the tests bind writable as root: a
// writable bind of a root-owned directory is refused.
const testUser = 1000

// chownUser gives paths to testUser.
func chownUser(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.Chown(p, testUser, testUser); err != nil {
			t.Fatal(err)
		}
	}
}

// ownedDir is a temporary directory of testUser's.
func ownedDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	chownUser(t, d)
	return d
}
