package sandbox

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// TestOwnerAlive checks how a bundle's owner is recognised: by its pid and
// start time, so a live owner under any program name (a renamed copy, a
// symlink) is alive, while a zombie, a pid now used by another process (a
// different start time) and a pid that does not exist are not.
func TestOwnerAlive(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal("no sleep program")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	renamed := filepath.Join(t.TempDir(), "not-clawos-run")
	if err := os.WriteFile(renamed, b, 0o755); err != nil {
		t.Fatal(err)
	}
	live := exec.Command(renamed, "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Process.Kill()
	start, err := procStart(live.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if !ownerAlive(owner{PID: live.Process.Pid, Start: start}) {
		t.Error("a live owner under another program name is not seen as alive")
	}
	if ownerAlive(owner{PID: live.Process.Pid, Start: start + 1}) {
		t.Error("a process with the owner's pid but another start time (a reused pid) is seen as the owner")
	}

	zombie := exec.Command("cat") // exits when its stdin closes
	in, err := zombie.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	zstart, err := procStart(zombie.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	in.Close()
	// Wait for the exit without reaping: a zombie.
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_PID, zombie.Process.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
		t.Fatal(err)
	}
	if ownerAlive(owner{PID: zombie.Process.Pid, Start: zstart}) {
		t.Error("a zombie owner is seen as alive")
	}
	zombie.Wait()
	if ownerAlive(owner{PID: 1 << 30, Start: 1}) {
		t.Error("a pid that does not exist is seen as alive")
	}
}

// TestAgentSignals checks signal hygiene: once the agent is reaped, a
// signal through its pidfd reaches nothing (ESRCH, whoever has its pid
// now), wait reaps the agent alone, and a forwarded signal's kill deadline
// is disarmed when the forwarding stops.
func TestAgentSignals(t *testing.T) {
	other := exec.Command("sleep", "30") // another child, never reaped by wait
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()

	child := exec.Command("true")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	a := openAgent(child.Process.Pid)
	defer a.close()
	if a.pidfd < 0 {
		t.Fatal("no pidfd: this kernel has pidfd_open (5.3+)")
	}
	ws, err := a.wait()
	if err != nil || !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("wait: %v %v", ws, err)
	}
	if err := a.signal(unix.SIGKILL); err != unix.ESRCH {
		t.Errorf("a signal after the agent was reaped: %v, want ESRCH", err)
	}
	if err := unix.Kill(other.Process.Pid, 0); err != nil {
		t.Errorf("wait reaped or touched another child: %v", err)
	}

	// The deadline: forwarding a signal arms it; stopping ends the
	// forwarding goroutine (so no timer of it can fire later).
	victim := exec.Command("sleep", "30")
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { victim.Process.Kill(); victim.Wait() }()
	v := openAgent(victim.Process.Pid)
	defer v.close()
	sigs, done, ended := make(chan os.Signal, 1), make(chan struct{}), make(chan struct{})
	go func() { forwardSignals(nil, sigs, done, v, time.Hour, logrus.New()); close(ended) }()
	sigs <- unix.SIGCONT // harmless to sleep; arms the deadline
	close(done)
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("forwardSignals still runs, deadline armed, after forwarding stopped")
	}
	if err := v.signal(0); err != nil {
		t.Errorf("the agent was signalled after forwarding stopped: %v", err)
	}

	// A signal taken before forwarding began (Supervise's wait for the
	// hand-off) is forwarded first.
	first := exec.Command("sleep", "30")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	f := openAgent(first.Process.Pid)
	defer f.close()
	done2 := make(chan struct{})
	go forwardSignals(unix.SIGTERM, make(chan os.Signal), done2, f, time.Hour, logrus.New())
	err = first.Wait()
	close(done2)
	if ws, ok := first.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != unix.SIGTERM {
		t.Errorf("the first signal was not forwarded: %v", err)
	}
}

func TestUnder(t *testing.T) {
	mounted := []string{"/dev", "/tmp"}
	for _, c := range []struct {
		dest string
		want bool
	}{
		{"/dev/pts", true},
		{"/dev/.clawos", true},
		{"/dev/", false},
		{"/dev", false},
		{"/device", false},
		{"/tmp/x/y", true},
		{"/usr", false},
		{"/dev/../etc/passwd", false},
	} {
		if got := under(c.dest, mounted); got != c.want {
			t.Errorf("under(%q) = %v, want %v", c.dest, got, c.want)
		}
	}
	if !under("/anything", []string{"/"}) || under("/", []string{"/"}) {
		t.Error("under a file system mounted at /")
	}
}
