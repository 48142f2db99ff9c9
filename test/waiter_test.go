package test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestWaiter runs clawos-wait alone, built with AddressSanitizer and UBSan
// (bin/clawos-wait-san), as clawos-run's hand-off makes it: a shell starts
// a child and execs clawos-wait on it, with /bin/echo as the program it
// execs at the end, which prints the arguments: the raw wait status and
// whether it killed the child for not exiting in time. Bad arguments are
// refused with 125.
func TestWaiter(t *testing.T) {
	waiter := built(t, "../bin/clawos-wait-san")
	for _, c := range []struct {
		name, child string
		signals     []unix.Signal
		want        string // echo's output
	}{
		{"exit status", "exit 3", nil, "end 768 0"},
		{"signal forwarded", "exec sleep 30", []unix.Signal{unix.SIGTERM}, "end 15 0"},
		{"ignored signal: killed after the deadline", "trap '' TERM; while :; do sleep 0.05; done", []unix.Signal{unix.SIGTERM}, "end 9 1"},
		{"a second signal kills", "trap '' INT HUP; while :; do sleep 0.05; done", []unix.Signal{unix.SIGINT, unix.SIGHUP}, "end 9 0"},
	} {
		t.Run(c.name, func(t *testing.T) {
			// fd 3: the program clawos-wait execs at the end.
			script := "sh -c \"$1\" & exec \"$0\" $! 300 3 -- echo end"
			cmd := exec.Command("sh", "-c", script, waiter, c.child)
			echo, err := os.Open("/bin/echo")
			if err != nil {
				t.Fatal(err)
			}
			defer echo.Close()
			cmd.ExtraFiles = []*os.File{echo}
			out, stderr := startGroup(t, cmd)
			if len(c.signals) > 0 {
				waitWaiting(t, cmd.Process.Pid)
				for _, sig := range c.signals {
					cmd.Process.Signal(sig)
					time.Sleep(20 * time.Millisecond)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			if got := strings.TrimSpace(out.String()); got != c.want {
				t.Errorf("got %q, want %q (%s)", got, c.want, stderr.String())
			}
			noSanitizerReport(t, stderr.String())
		})
	}
	// --relay: the agent's output copied from a pipe, all of it before the
	// clean-up program runs; a destination that fails (a pipe nobody
	// reads: EPIPE) is drained, so that the agent never blocks, and does
	// not end clawos-wait (SIGPIPE).
	for _, c := range []struct {
		name   string
		broken bool
		want   string
	}{
		{"relayed", false, seqLines(100000) + "end 768 0\n"},
		{"destination fails", true, "end 768 0\n"},
	} {
		t.Run("relay: "+c.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			echo, err := os.Open("/bin/echo")
			if err != nil {
				t.Fatal(err)
			}
			defer echo.Close()
			to := "1"
			files := []*os.File{echo, r, w} // 3, 4, 5
			if c.broken {
				br, bw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				br.Close()
				defer bw.Close()
				files, to = append(files, bw), "6"
			}
			// The child writes to fd 5 and holds no read end; the waiter
			// reads fd 4 and holds no write end.
			script := "sh -c \"$1\" 4<&- & exec 5>&-; exec \"$0\" $! 300 3 --relay 4 " + to + " -- echo end"
			cmd := exec.Command("sh", "-c", script, waiter, "seq 1 100000 >&5; exit 3")
			cmd.ExtraFiles = files
			out, stderr := startGroup(t, cmd)
			r.Close()
			w.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("%v: %s", err, stderr.String())
			}
			if got := out.String(); got != c.want {
				t.Errorf("got %d bytes ending %q, want %d bytes ending %q (%s)", len(got), got[max(0, len(got)-40):], len(c.want), c.want[max(0, len(c.want)-40):], stderr.String())
			}
			noSanitizerReport(t, stderr.String())
		})
	}
	for _, args := range [][]string{{}, {"1", "2", "3", "x", "echo"}, {"-1", "2", "3", "--", "echo"}, {"1", "2x", "3", "--", "echo"},
		{"99999999999999999999", "2", "3", "--", "echo"}, {"1", "2", "", "--", "echo"},
		{"1", "2", "3", "--relay", "99", "1", "--", "echo"}, {"1", "2", "3", "--relay", "1", "1", "--", "echo"},
		{"1", "2", "3", "--relay", "x", "1", "--", "echo"}, {"1", "2", "3", "--relay", "0", "1"},
		{"1", "2", "3", "--relay", "0", "1", "--relay", "0", "2", "--relay", "0", "1", "--", "echo"}} {
		r := runSplit(t, 10*time.Second, waiter, args...)
		if r.code != 125 {
			t.Errorf("clawos-wait %q: exit %d, want 125 (%s)", args, r.code, r.stderr)
		}
	}
}

// startGroup starts cmd in a process group of its own, its output
// collected: whatever happens to the test, the waiter and its child (which
// may ignore SIGTERM) are killed at the test's end.
func startGroup(t *testing.T, cmd *exec.Cmd) (out, stderr *strings.Builder) {
	t.Helper()
	out, stderr = &strings.Builder{}, &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Kill(-cmd.Process.Pid, unix.SIGKILL) })
	return out, stderr
}

// seqLines is what seq 1 n prints.
func seqLines(n int) string {
	var b strings.Builder
	for k := 1; k <= n; k++ {
		b.WriteString(strconv.Itoa(k))
		b.WriteByte('\n')
	}
	return b.String()
}

// noSanitizerReport fails t where stderr, of a program built with
// AddressSanitizer and UBSan, holds a report of theirs or of LeakSanitizer.
func noSanitizerReport(t *testing.T, stderr string) {
	t.Helper()
	for _, bad := range []string{"AddressSanitizer", "runtime error:", "UndefinedBehaviorSanitizer", "LeakSanitizer"} {
		if strings.Contains(stderr, bad) {
			t.Fatalf("sanitizer report:\n%s", stderr)
		}
	}
}

// waitWaiting waits until pid waits for signals (clawos-wait is set up):
// the call it is in is rt_sigtimedwait.
func waitWaiting(t *testing.T, pid int) {
	t.Helper()
	waitInCall(t, pid, "rt_sigtimedwait", "")
}

// waitInCall waits until pid blocks in the system call named call, with
// arg0 as its first argument unless arg0 is "": /proc/PID/syscall's first
// two fields are the call's number and that argument.
func waitInCall(t *testing.T, pid int, call, arg0 string) {
	t.Helper()
	nr := sysnr(t, call)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/syscall")
		if f := strings.Fields(string(b)); len(f) > 1 && f[0] == nr && (arg0 == "" || f[1] == arg0) {
			return
		}
	}
	t.Fatalf("process %d never blocked in %s(%s)", pid, call, arg0)
}
