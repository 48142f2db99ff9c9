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
	done2, ended2 := make(chan struct{}), make(chan struct{})
	go func() {
		forwardSignals(unix.SIGTERM, make(chan os.Signal), done2, f, time.Hour, logrus.New())
		close(ended2)
	}()
	err = first.Wait()
	close(done2)
	<-ended2
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

// TestInstallInit: as root, bundles under the state directory link one
// copy per clawos-init build (root's, mode 0555); a reinstalled
// clawos-init gets a new copy and the old one goes; a copy that is not
// what installInit makes (here: writable) is replaced, never linked; any
// other bundle gets a copy of its own.
func TestInstallInit(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "clawos-init")
	os.WriteFile(src, []byte("init v1"), 0o755)
	shared := filepath.Join(dir, "state", "init")
	install := func(name, shared string) string {
		t.Helper()
		dst := filepath.Join(dir, name)
		if err := installInit(src, dst, shared); err != nil {
			t.Fatal(err)
		}
		return dst
	}
	same := func(a, b string) bool {
		fa, errA := os.Stat(a)
		fb, errB := os.Stat(b)
		return errA == nil && errB == nil && os.SameFile(fa, fb)
	}
	own := install("own", "")
	if b, _ := os.ReadFile(own); string(b) != "init v1" || same(own, src) {
		t.Fatalf("a bundle of its own: %q, the source itself %v", b, same(own, src))
	}
	a, b := install("a", shared), install("b", shared)
	if os.Geteuid() != 0 {
		if same(a, b) {
			t.Fatal("rootless bundles share clawos-init")
		}
		return
	}
	if !same(a, b) || same(a, src) {
		t.Fatalf("two bundles: shared %v, the source itself %v", same(a, b), same(a, src))
	}
	copies, _ := filepath.Glob(filepath.Join(shared, "clawos-init-*"))
	if len(copies) != 1 {
		t.Fatalf("copies %v", copies)
	}
	var st unix.Stat_t
	if err := unix.Stat(copies[0], &st); err != nil || st.Uid != 0 || st.Mode&0o7777 != 0o555 {
		t.Errorf("the shared copy: uid %d mode %o %v", st.Uid, st.Mode&0o7777, err)
	}
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o700 {
		t.Errorf("the shared directory: %v", fi.Mode())
	}
	// Tampered (writable): replaced, not linked.
	os.Chmod(copies[0], 0o755)
	c := install("c", shared)
	if same(c, a) {
		t.Error("a writable shared copy was linked")
	}
	// Reinstalled: a new copy, the old ones removed (bundles keep theirs).
	time.Sleep(10 * time.Millisecond)
	os.Remove(src)
	os.WriteFile(src, []byte("init v2"), 0o755)
	d := install("d", shared)
	if got, _ := os.ReadFile(d); string(got) != "init v2" {
		t.Errorf("after the reinstall: %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(shared, "clawos-init-*")); len(left) != 1 {
		t.Errorf("copies after the reinstall: %v", left)
	}
	if got, _ := os.ReadFile(a); string(got) != "init v1" {
		t.Errorf("an earlier bundle's clawos-init: %q", got)
	}
}
