package plancache

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPrune: a store beyond the limit removes the least recently used
// entries down to three quarters of it; a hit renews an old entry's mark
// of use, so it stays; an interrupted store's old temporary file goes, a
// fresh one (a store under way) stays.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	c, err := Open(dir, os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	c.max = 8
	key := func(i int) string { return fmt.Sprintf("%064x", i) }
	put := func(i int) {
		t.Helper()
		if err := c.Put(&Entry{Format: Format, Key: key(i), Whitelist: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Now().Add(-30 * 24 * time.Hour)
	for i := 0; i < 8; i++ {
		put(i)
		at := base.Add(time.Duration(i) * time.Hour) // entry 0 is the oldest
		os.Chtimes(c.path(key(i)), at, at)
	}
	oldTmp := filepath.Join(dir, "."+key(99)+".json.tmp-1")
	freshTmp := filepath.Join(dir, "."+key(98)+".json.tmp-2")
	for _, p := range []string{oldTmp, freshTmp} {
		os.WriteFile(p, []byte("partial"), 0o600)
	}
	os.Chtimes(oldTmp, base, base)
	if c.Get(key(0)) == nil { // used now: no longer the oldest
		t.Fatal("entry 0 missing before the limit was reached")
	}
	put(8) // nine entries: prune to six
	var kept []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			kept = append(kept, strings.TrimSuffix(e.Name(), ".json"))
		}
	}
	if len(kept) != 6 {
		t.Fatalf("%d entries after pruning, want 6: %v", len(kept), kept)
	}
	for i, want := range map[int]bool{0: true, 1: false, 2: false, 3: false, 4: true, 8: true} {
		if got := c.Get(key(i)) != nil; got != want {
			t.Errorf("entry %d kept %v, want %v", i, got, want)
		}
	}
	if _, err := os.Stat(oldTmp); !os.IsNotExist(err) {
		t.Errorf("an interrupted store's temporary file of a month ago was kept: %v", err)
	}
	if _, err := os.Stat(freshTmp); err != nil {
		t.Errorf("a fresh temporary file (a store under way) was removed: %v", err)
	}
}
