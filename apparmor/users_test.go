package apparmor

import (
	"errors"
	"testing"
)

// TestUsers loads a profile for its first user only, unloads it after its
// last, keeps it while another holds it, and records nothing for a load
// that failed.
func TestUsers(t *testing.T) {
	u := Users{Dir: t.TempDir()}
	var loads, unloads int
	load := func() error { loads++; return nil }
	unload := func() error { unloads++; return nil }
	for _, h := range []string{"a", "b"} {
		if err := u.Acquire("clawos-x-1", h, load); err != nil {
			t.Fatal(err)
		}
	}
	if loads != 1 {
		t.Errorf("%d loads for two users of one profile, want 1", loads)
	}
	if got := u.HeldBy("b"); len(got) != 1 || got[0] != "clawos-x-1" {
		t.Errorf("HeldBy(b) = %v", got)
	}
	u.Release("clawos-x-1", "a", unload)
	if unloads != 0 {
		t.Error("unloaded while another sandbox uses it")
	}
	u.Release("clawos-x-1", "b", unload)
	if unloads != 1 {
		t.Errorf("%d unloads after the last user, want 1", unloads)
	}
	if err := u.Acquire("clawos-y-2", "c", func() error { return errors.New("refused") }); err == nil || len(u.HeldBy("c")) != 0 {
		t.Errorf("a failed load: %v, held %v", err, u.HeldBy("c"))
	}
}
