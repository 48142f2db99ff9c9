package confine

import (
	"crypto/rand"
	"testing"
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
		if a%8 != 0 || a < 0x2000_0000_0000 || a+4096+4096 > 0x7000_0000_0000 || a&4095 > 4088 {
			t.Fatalf("address %#x out of range or misaligned", a)
		}
		seen[a] = true
	}
	if len(seen) < 9990 {
		t.Errorf("only %d distinct addresses in 10000 draws", len(seen))
	}
}
