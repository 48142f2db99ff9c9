package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestOwnerAlive checks the three cases of a bundle's owner pid: a live
// clawos-run, a zombie clawos-run (killed, never reaped) and a pid now used
// by another program.
func TestOwnerAlive(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep program")
	}
	b, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	fake := filepath.Join(t.TempDir(), progName) // a program named clawos-run
	if err := os.WriteFile(fake, b, 0o755); err != nil {
		t.Fatal(err)
	}
	live := exec.Command(fake, "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Process.Kill()
	if !ownerAlive(live.Process.Pid) {
		t.Error("a live clawos-run is not seen as alive")
	}
	other := exec.Command(sleep, "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer other.Process.Kill()
	if ownerAlive(other.Process.Pid) {
		t.Error("another program with the owner's pid is seen as the owner")
	}
	zombie := exec.Command(fake, "0")
	if err := zombie.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // exited, not reaped yet: a zombie
	if ownerAlive(zombie.Process.Pid) {
		t.Error("a zombie clawos-run is seen as alive")
	}
	zombie.Wait()
	if ownerAlive(1 << 30) {
		t.Error("a pid that does not exist is seen as alive")
	}
}
