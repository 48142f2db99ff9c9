package confine

import (
	"crypto/rand"
	"os"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/translate"
)

// TestExecAddress checks the range and alignment of the secret exec
// addresses, and that two draws differ.
func TestExecAddress(t *testing.T) {
	seen := map[uint64]bool{}
	for i := 0; i < 10000; i++ {
		a, err := ExecAddress(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if a%8 != 0 || a < 0x2000_0000_0000 || a+4096+4096 > 0x6000_0000_0000 || a&4095 > 4088 {
			t.Fatalf("address %#x out of range or misaligned", a)
		}
		seen[a] = true
	}
	if len(seen) < 9990 {
		t.Errorf("only %d distinct addresses in 10000 draws", len(seen))
	}
}

// TestLandlockMode checks the Landlock decision: required refuses without
// Landlock; auto refuses without it only where the agent may execute
// programs (the whitelist allows execve, or no start-only exec is in
// place), and runs on seccomp alone with start-only exec; off never
// applies it; an unknown mode is refused.
func TestLandlockMode(t *testing.T) {
	raw, err := os.ReadFile("../../examples/ironclaw.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	wl, _, err := Parse("ironclaw", raw, translate.Options{}, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	plan := func(start uint64) *Plan {
		p, err := NewPlan(wl, translate.Options{Baselines: []string{"start"}, ExecStart: start}, "runc", true, false)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	startOnly, execAllowed := plan(0x2000_0000_1000), plan(0)
	if execAllowed.ExecAllowed() == false || startOnly.ExecAllowed() {
		t.Fatalf("ExecAllowed: start-only %v, plain %v", startOnly.ExecAllowed(), execAllowed.ExecAllowed())
	}
	for _, c := range []struct {
		name    string
		p       *Plan
		mode    string
		abi     int
		use     bool
		wantErr bool
	}{
		{"auto with Landlock", startOnly, LandlockAuto, 7, true, false},
		{"auto without Landlock, start-only exec", startOnly, LandlockAuto, 0, false, false},
		{"auto without Landlock, exec allowed", execAllowed, LandlockAuto, 0, false, true},
		{"required without Landlock", startOnly, LandlockRequired, 0, false, true},
		{"required with Landlock", execAllowed, LandlockRequired, 1, true, false},
		{"off", execAllowed, LandlockOff, 7, false, false},
		{"unknown mode", startOnly, "maybe", 7, false, true},
	} {
		use, state, err := c.p.Landlock(c.mode, c.abi)
		if use != c.use || (err != nil) != c.wantErr {
			t.Errorf("%s: %v %q %v; want use %v, error %v", c.name, use, state, err, c.use, c.wantErr)
		}
		if err == nil && state == "" {
			t.Errorf("%s: no state to record", c.name)
		}
	}
}
