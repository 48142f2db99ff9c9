package test

import (
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/seccomp"
)

// allowAll is the one-instruction BPF program SECCOMP_RET_ALLOW, inline as
// clawos-init takes it.
func allowAll(t *testing.T) string {
	return inlineBPF(t, bpf.RetConstant{Val: uint32(seccomp.RetAllow)})
}

// TestInitGate runs clawos-init alone (built with AddressSanitizer and
// UBSan) with --parent-fd 3, as clawos-run starts it: the agent, a shell
// that writes a file, must not run before the launcher's go-ahead (the
// byte 'g') arrives on fd 3, whatever the launcher does instead: a hang-up
// before or during the wait, or another byte, is exit 127 and no agent.
// The wait is observed in the kernel (/proc/PID/syscall: read on fd 3),
// not guessed with a sleep.
func TestInitGate(t *testing.T) {
	initBin := built(t, "../bin/clawos-init-san")
	const (
		closeFirst = iota // the write end closed before clawos-init starts
		goAhead
		hangUp
		otherByte
	)
	for _, c := range []struct {
		name    string
		act     int
		init    bool
		code    int
		ran     bool
		message string
	}{
		{"go-ahead", goAhead, false, 0, true, ""},
		{"--init: go-ahead, then the launcher's ack", goAhead, true, 0, true, ""},
		{"launcher gone before the start", closeFirst, false, 127, false, "the launcher is gone"},
		{"launcher gone during the wait", hangUp, false, 127, false, "the launcher is gone"},
		{"--init: launcher gone during the wait", hangUp, true, 127, false, "the launcher is gone"},
		{"another byte", otherByte, false, 127, false, "something else than its go-ahead"},
	} {
		t.Run(c.name, func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "ran")
			args := []string{allowAll(t), "--parent-fd", "3"}
			if c.init {
				args = append(args, "--init")
			}
			args = append(args, "--", "/bin/sh", "-c", `echo ran > "$0"`, marker)
			cmd := exec.Command(initBin, args...)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			cmd.ExtraFiles = []*os.File{r}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			if c.act == closeFirst {
				w.Close()
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r.Close()
			defer unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
			if c.act != closeFirst {
				waitInCall(t, cmd.Process.Pid, "read", "0x3")
				if _, err := os.Stat(marker); err == nil {
					t.Fatal("the agent ran before the launcher's go-ahead")
				}
			}
			switch c.act {
			case goAhead:
				if _, err := w.Write([]byte{'g'}); err != nil {
					t.Fatal(err)
				}
				if c.init {
					// pid 1 keeps the agent's zombie until the launcher's
					// ack (a second byte), as clawos-run's started writes it.
					waitFile(t, marker)
					w.Write([]byte{1})
				}
			case hangUp:
				w.Close()
			case otherByte:
				w.Write([]byte{'x'})
			}
			code := 0
			if err := cmd.Wait(); err != nil {
				ee, ok := err.(*exec.ExitError)
				if !ok {
					t.Fatal(err)
				}
				code = ee.ExitCode()
			}
			_, statErr := os.Stat(marker)
			if code != c.code || (statErr == nil) != c.ran || !strings.Contains(stderr.String(), c.message) {
				t.Errorf("exit %d (want %d), agent ran: %t (want %t), stderr %q (want %q)", code, c.code, statErr == nil, c.ran, stderr.String(), c.message)
			}
			noSanitizerReport(t, stderr.String())
		})
	}
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			return
		}
	}
	t.Fatalf("%s never appeared", path)
}

// inlineBPF assembles insns as clawos-init takes a filter inline: "hex:"
// and the program in the kernel's sock_filter layout (seccomp.Program).
func inlineBPF(t *testing.T, insns ...bpf.Instruction) string {
	t.Helper()
	raw, err := bpf.Assemble(insns)
	if err != nil {
		t.Fatal(err)
	}
	return "hex:" + hex.EncodeToString((&seccomp.Program{Instructions: raw}).Bytes())
}

// killOn is a BPF program that kills the process at the syscall named
// (native numbers) and allows every other call, inline.
func killOn(t *testing.T, name string) string {
	nr, err := strconv.Atoi(sysnr(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return inlineBPF(t, bpf.LoadAbsolute{Off: 0, Size: 4}, // the syscall number
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: 1},
		bpf.RetConstant{Val: uint32(seccomp.RetKillProcess)},
		bpf.RetConstant{Val: uint32(seccomp.RetAllow)})
}

// TestInitContainerFilter runs clawos-init alone (ASan/UBSan) with
// --container-filter, as clawos-run's embedded runtime starts it (the
// runtime loads no filter then): the filter holds clawos-init's own work
// from its first call after its arguments (a filter that kills setsid,
// which clawos-init calls before it reads anything of the container and
// the agent never calls, kills clawos-init), and the agent runs under it
// beside the agent filter (a call the
// agent filter allows and it does not is killed; /proc/self/status counts
// two filters). A malformed one refuses the start.
func TestInitContainerFilter(t *testing.T) {
	initBin := built(t, "../bin/clawos-init-san")
	probe := built(t, "../bin/clawos-probe")
	for _, c := range []struct {
		name      string
		container string
		cmd       []string
		signal    unix.Signal // the death wanted; 0: an exit with code
		code      int
		stdout    string
	}{
		{"the agent under both filters", allowAll(t), []string{probe, "status"}, 0, 0, "Seccomp_filters:\t2"},
		{"a call the container filter kills", killOn(t, "getppid"), []string{probe, "call", sysnr(t, "getppid")}, unix.SIGSYS, 0, ""},
		// setsid: clawos-init's first call after its arguments and the
		// launcher pipe, before it looks for the command in the container;
		// the agent does not make it.
		{"clawos-init's own calls are under it", killOn(t, "setsid"), []string{"--exec-cmd", "--", probe, "status"}, unix.SIGSYS, 0, ""},
		{"a malformed filter", "hex:0600", []string{probe, "status"}, 0, 127, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := []string{allowAll(t), "--container-filter", c.container}
			if c.cmd[0] != "--exec-cmd" {
				args = append(args, "--")
			}
			cmd := exec.Command(initBin, append(args, c.cmd...)...)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			var ws syscall.WaitStatus
			if ee, ok := err.(*exec.ExitError); ok {
				ws = ee.Sys().(syscall.WaitStatus)
			} else if err != nil {
				t.Fatal(err)
			}
			switch {
			case c.signal != 0 && (!ws.Signaled() || ws.Signal() != c.signal):
				t.Errorf("status %v, want death by %v (stderr %q)", ws, c.signal, stderr.String())
			case c.signal == 0 && (ws.Signaled() || ws.ExitStatus() != c.code):
				t.Errorf("status %v, want exit %d (stderr %q)", ws, c.code, stderr.String())
			case !strings.Contains(stdout.String(), c.stdout):
				t.Errorf("stdout %q, want %q", stdout.String(), c.stdout)
			}
			noSanitizerReport(t, stderr.String())
		})
	}
}
