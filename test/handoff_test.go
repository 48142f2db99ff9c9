package test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// launched is a clawos-run whose agent said ready (clawos-probe ready,
// sigwait or ready-then, which then waits for a byte on its stdin).
type launched struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *bytes.Buffer
}

// launch starts clawos-run with args in the background and waits for the
// agent's ready.
func (s sandboxTools) launch(t *testing.T, args ...string) launched {
	t.Helper()
	cmd := exec.Command(s.run, append(s.flags(), args...)...)
	h := launched{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = h.stderr
	var err error
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan error, 1)
	go func() {
		buf := make([]byte, 6)
		_, err := io.ReadFull(out, buf)
		if err == nil && string(buf) != "ready\n" {
			err = fmt.Errorf("agent said %q", buf)
		}
		ready <- err
		io.Copy(io.Discard, out)
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("agent did not get ready: %v (%s)", err, h.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not get ready in 20 s")
	}
	return h
}

// exitCode waits for clawos-run and returns its exit status.
func (h launched) exitCode(t *testing.T) int {
	t.Helper()
	err := h.cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// program is the basename of the program pid runs.
func program(pid int) string {
	exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return filepath.Base(exe)
}

// residentKB is pid's resident set (VmRSS) in kB.
func residentKB(t testing.TB, pid int) int {
	t.Helper()
	n, ok := procKB(pid, "status", "VmRSS:")
	if !ok {
		t.Fatalf("no VmRSS for %d", pid)
	}
	return n
}

// procKB is a "Field: N kB" line of /proc/PID/FILE (status,
// smaps_rollup); false when the file or the field is not there.
func procKB(pid int, file, field string) (int, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == field {
			n, err := strconv.Atoi(f[1])
			return n, err == nil
		}
	}
	return 0, false
}

// heldSmall checks that the launcher pid, handed off, holds at most 5 MB.
func heldSmall(t *testing.T, pid int, when string) {
	t.Helper()
	kb := residentKB(t, pid)
	t.Logf("held %s: %s, VmRSS %d kB", when, program(pid), kb)
	if kb > 5*1024 {
		t.Errorf("clawos-wait holds %d kB, want at most 5 MB", kb)
	}
}

// waitProgram waits until pid runs name.
func waitProgram(t *testing.T, pid int, name string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); program(pid) != name; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("clawos-run (%d) runs %s, want %s", pid, program(pid), name)
		}
	}
}

// TestRunHandOff checks the hand-off of a running sandbox to clawos-wait:
// once the agent runs, the launcher's process holds a few hundred
// kilobytes, the agent's exit status, a seccomp kill's syscall, a
// forwarded signal, the kill after --kill-after and the port policy's
// refusals are what clawos-run reports without it, nothing is left after
// any exit, and the agent still dies with its launcher. The runc runtime's
// processes are not the launcher's children: no hand-off there.
func TestRunHandOff(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		want := "clawos-wait"
		if s.runtime == "runc" {
			want = "clawos-run"
		}
		run := func(args ...string) launched {
			return s.launch(t, append([]string{"--hand-off-after", "0s", "--whitelist", probeWhitelist, "--", s.probe, "ready-then"}, args...)...)
		}

		// Handed off at once, before the sandbox's init has checked that
		// its launcher runs: the launcher pipe stays open in clawos-wait
		// (it was closed by the exec once, and the agent never started).
		for i := 0; i < 5; i++ {
			if r := s.clawosRun(t, "--hand-off-after", "0s", "--whitelist", probeWhitelist, "--", s.probe, "call", sysnr(t, "getpid")); r.code != 0 {
				t.Fatalf("an immediate hand-off: exit %d (%s)", r.code, r.stderr)
			}
		}

		// An exit status, and the memory held while the agent runs.
		h := run("call", sysnr(t, "getpid"))
		pid := h.cmd.Process.Pid
		waitProgram(t, pid, want)
		if s.runtime == "embedded" {
			heldSmall(t, pid, "while the agent runs")
		}
		h.stdin.Write([]byte{1})
		if code := h.exitCode(t); code != 0 {
			t.Errorf("getpid after the hand-off: exit %d, want 0 (%s)", code, h.stderr)
		}
		assertClean(t, s)

		// A seccomp kill is reported with its syscall.
		h = run("call", sysnr(t, "getuid"))
		waitProgram(t, h.cmd.Process.Pid, want)
		h.stdin.Write([]byte{1})
		if code := h.exitCode(t); code != 159 || !strings.Contains(h.stderr.String(), "syscall=getuid") {
			t.Errorf("getuid after the hand-off: exit %d, want 159 with the syscall named (%s)", code, h.stderr)
		}
		assertClean(t, s)

		// Signals: forwarded (the agent has no handler for SIGTERM, as
		// pid 1 it ignores it), then the kill after --kill-after.
		h = s.launch(t, "--hand-off-after", "0s", "--kill-after", "300ms", "--whitelist", probeWhitelist, "--", s.probe, "ready")
		waitProgram(t, h.cmd.Process.Pid, want)
		h.cmd.Process.Signal(unix.SIGTERM)
		if code := h.exitCode(t); code != 137 || !strings.Contains(h.stderr.String(), "did not exit after the forwarded signal") {
			t.Errorf("SIGTERM to an agent without a handler: exit %d, want 137 and the warning (%s)", code, h.stderr)
		}
		h = s.launch(t, "--hand-off-after", "0s", "--whitelist", probeWhitelist, "--", s.probe, "sigwait")
		waitProgram(t, h.cmd.Process.Pid, want)
		h.cmd.Process.Signal(unix.SIGHUP)
		if code := h.exitCode(t); code != 128+int(unix.SIGHUP) {
			t.Errorf("SIGHUP to an agent with a handler: exit %d, want %d (%s)", code, 128+int(unix.SIGHUP), h.stderr)
		}
		assertClean(t, s)

		// The port policy's counters are read after the hand-off (Landlock
		// off, so that nftables is what refuses).
		h = s.launch(t, "--hand-off-after", "0s", "--landlock", "off", "--whitelist", probeWhitelist, "--", s.probe, "ready-then", "listen-connect", "8080")
		waitProgram(t, h.cmd.Process.Pid, want)
		h.stdin.Write([]byte{1})
		if code := h.exitCode(t); code != int(unix.ECONNREFUSED) || !strings.Contains(h.stderr.String(), "refused_packets") {
			t.Errorf("a refused port after the hand-off: exit %d, want %d and the refusals reported (%s)", code, unix.ECONNREFUSED, h.stderr)
		}
		assertClean(t, s)

		// SIGKILL of the launcher after the hand-off: the agent dies with
		// it, the next run removes the rest.
		id := "clawos-test-handoff-" + s.runtime
		h = s.launch(t, "--id", id, "--hand-off-after", "0s", "--whitelist", probeWhitelist, "--", s.probe, "ready")
		waitProgram(t, h.cmd.Process.Pid, want)
		agent := agentOf(t, id)
		h.cmd.Process.Kill()
		h.cmd.Wait()
		waitGone(t, agent, "the agent of a SIGKILLed clawos-wait")
		s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "status")
		assertClean(t, s)
	})
}

// TestRunHandOffOnlyItsOwn checks that the clean-up a handed-off run ends
// with removes only its own sandbox: the same command line from another
// process (the state names a sandbox it did not create) is refused and
// removes nothing.
func TestRunHandOffOnlyItsOwn(t *testing.T) {
	s := requireSandbox(t)
	id := "clawos-test-handoff-other"
	h := s.launch(t, "--id", id, "--whitelist", probeWhitelist, "--", s.probe, "ready")
	defer func() {
		h.cmd.Process.Signal(syscall.SIGKILL)
		h.cmd.Wait()
		s.clawosRun(t, "--whitelist", probeWhitelist, "--", s.probe, "status")
		assertClean(t, s)
	}()
	state := fmt.Sprintf(`{"state_dir":%q,"id":%q,"init_pid":1,"net_fd":-1,"user_fd":-1}`, s.stateDir, id)
	r := runSplit(t, 30*time.Second, s.run, "__finish-hand-off", "text", "info", state, "0", "0")
	if r.code == 0 || !strings.Contains(r.stderr, "is not this process's") {
		t.Errorf("another process's clean-up: exit %d (%s), want refused", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(s.stateDir, "bundles", id)); err != nil {
		t.Errorf("the sandbox's bundle is gone: %v", err)
	}
}

// TestRunPrivateRoot: as root, the embedded runtime makes the sandbox's
// root a tmpfs of the sandbox's mount namespace alone (the launcher thread
// mounts it in a namespace of its own before the init is forked): in the
// sandbox it is read-only, on the host nothing is mounted and the bundle's
// rootfs stays an empty directory, before and after the hand-off to
// clawos-wait, and nothing is left afterwards.
func TestRunPrivateRoot(t *testing.T) {
	s := requireSandbox(t)
	s.runtime = "embedded"
	h := s.launch(t, "--hand-off-after", "0s", "--whitelist", "../examples/ironclaw.whitelist.json", "--", s.probe, "ready-then", "write-file", "/clawos-test")
	agent := 0
	for _, pid := range processTree(h.cmd.Process.Pid) {
		if program(pid) == "clawos-probe" {
			agent = pid
		}
	}
	if agent == 0 {
		t.Fatal("no agent process")
	}
	bundles, _ := filepath.Glob(filepath.Join(s.stateDir, "bundles", "*", "owner.json"))
	bundle := ""
	for _, o := range bundles {
		if b, _ := os.ReadFile(o); strings.Contains(string(b), fmt.Sprintf(`"pid":%d,`, h.cmd.Process.Pid)) {
			bundle = filepath.Dir(o)
		}
	}
	if bundle == "" {
		t.Fatalf("no bundle of clawos-run %d in %v", h.cmd.Process.Pid, bundles)
	}
	check := func(when string) {
		t.Helper()
		mi, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", agent))
		if err != nil {
			t.Fatal(err)
		}
		root := ""
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 6 && f[4] == "/" {
				root = l
			}
		}
		f := strings.Fields(root)
		sep := slices.Index(f, "-")
		if sep < 0 || f[sep+1] != "tmpfs" || f[sep+2] != "clawos-root" || !slices.Contains(strings.Split(f[5], ","), "ro") {
			t.Errorf("%s: the sandbox's root is %q, want the read-only tmpfs clawos-root", when, root)
		}
		if host, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(host), "clawos-root") {
			t.Errorf("%s: the sandbox's root is mounted on the host", when)
		}
		if entries, err := os.ReadDir(filepath.Join(bundle, "rootfs")); err != nil || len(entries) != 0 {
			t.Errorf("%s: the bundle's rootfs on the host: %v %v", when, entries, err)
		}
	}
	check("before the hand-off")
	for deadline := time.Now().Add(5 * time.Second); program(h.cmd.Process.Pid) != "clawos-wait"; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("clawos-run did not hand off in 5 s")
		}
	}
	check("after the hand-off")
	h.stdin.Write([]byte{'\n'})
	if code := h.exitCode(t); code != int(unix.EROFS) {
		t.Errorf("a write to the sandbox's root: exit %d, want EROFS (%s)", code, h.stderr)
	}
	assertClean(t, s)
}

// TestRunHandOffTerminal checks the hand-off of an agent whose output goes
// to the caller's terminal (clawos-run copies it: the agent holds a pipe,
// never the terminal): clawos-wait takes the copying over, so the launcher
// holds a few hundred kilobytes here too, and every line the agent wrote,
// before, during and after the hand-off, reaches the terminal once and in
// order, more than a pipe's and a terminal's buffers hold. The runc
// runtime does not hand off; its output arrives as well.
func TestRunHandOffTerminal(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		want := "clawos-wait"
		if s.runtime == "runc" {
			want = "clawos-run"
		}
		master, slave := openPty(t)
		defer master.Close()
		const n = 20000 // lines of about 11 bytes, per batch
		cmd := exec.Command(s.run, append(s.flags(), "--hand-off-after", "0s", "--whitelist", probeWhitelist, "--", s.probe, "chatter", strconv.Itoa(n))...)
		var stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = slave, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		defer cmd.Process.Kill()
		var mu sync.Mutex
		var out bytes.Buffer
		read := make(chan struct{})
		go func() {
			defer close(read)
			buf := make([]byte, 32<<10)
			for {
				k, err := master.Read(buf)
				mu.Lock()
				out.Write(buf[:k])
				mu.Unlock()
				if err != nil {
					return // EIO: every descriptor of the terminal closed
				}
			}
		}()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			ready := bytes.Contains(out.Bytes(), []byte("ready"))
			mu.Unlock()
			if ready {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the agent did not get ready (%s)", &stderr)
			}
		}
		pid := cmd.Process.Pid
		waitProgram(t, pid, want)
		if s.runtime == "embedded" {
			heldSmall(t, pid, "while the agent writes to a terminal")
		}
		cmd.Process.Signal(unix.SIGHUP) // the second batch, then exit 0
		if err := cmd.Wait(); err != nil {
			t.Fatalf("clawos-run: %v (%s)", err, &stderr)
		}
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			t.Fatal("the terminal was not closed 10 s after clawos-run's exit")
		}
		got := strings.Split(strings.TrimSuffix(strings.ReplaceAll(out.String(), "\r\n", "\n"), "\n"), "\n")
		var wantLines []string
		for _, w := range []string{"line", "ready", "more"} {
			if w == "ready" {
				wantLines = append(wantLines, w)
				continue
			}
			for k := 1; k <= n; k++ {
				wantLines = append(wantLines, fmt.Sprintf("%s %d", w, k))
			}
		}
		if !slices.Equal(got, wantLines) {
			i := 0
			for i < len(got) && i < len(wantLines) && got[i] == wantLines[i] {
				i++
			}
			t.Fatalf("the terminal got %d lines, want %d; first difference at line %d (%q) (%s)", len(got), len(wantLines), i+1,
				got[min(i, len(got)-1)], &stderr)
		}
		assertClean(t, s)
	})
}

// openPty opens a pseudo-terminal's master and slave ends.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave
}
