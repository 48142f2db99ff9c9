package confine

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestAppArmorState: a profile is loaded for its first user and removed
// after its last, whichever program holds it; a saved text is loaded
// again for a holder that finds no user; a name that was never saved, or
// that would name a file elsewhere, holds nothing.
func TestAppArmorState(t *testing.T) {
	s := AppArmorState{Dir: t.TempDir()}
	var loads, unloads []string
	load := func(p *AppArmorProfile) error { loads = append(loads, p.Name+":"+p.Text); return nil }
	unload := func(name string) error { unloads = append(unloads, name); return nil }
	p := &AppArmorProfile{Name: "clawos-550e8400-0123456789ab", Text: "profile text"}
	if err := s.Save(p); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(s.Dir, "profiles", p.Name)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved text: %v %v, want mode 0600", fi, err)
	}
	for _, holder := range []string{"hook-a", "clawos-run-b"} {
		if held, err := s.HoldSaved(p.Name, holder, load); err != nil || !held {
			t.Fatalf("HoldSaved %s: %v %v", holder, held, err)
		}
	}
	if want := []string{p.Name + ":profile text"}; !reflect.DeepEqual(loads, want) {
		t.Errorf("loads %v, want %v (once, for the first user)", loads, want)
	}
	if got := s.HeldBy("hook-a"); !reflect.DeepEqual(got, []string{p.Name}) {
		t.Errorf("HeldBy: %v", got)
	}
	if err := s.Release(p.Name, "hook-a", unload); err != nil || len(unloads) != 0 {
		t.Fatalf("the first release unloaded (%v) or failed: %v", unloads, err)
	}
	if err := s.Release(p.Name, "clawos-run-b", unload); err != nil || !reflect.DeepEqual(unloads, []string{p.Name}) {
		t.Fatalf("the last release: unloads %v, %v", unloads, err)
	}
	// Removed from the kernel: the next holder loads the saved text again.
	if held, err := s.HoldSaved(p.Name, "hook-c", load); err != nil || !held || len(loads) != 2 {
		t.Errorf("a holder after the last release: %v %v, loads %v", held, err, loads)
	}
	for _, name := range []string{"containers-default-0.50.1", "../../etc/passwd", ".hidden", ""} {
		if held, err := s.HoldSaved(name, "hook-d", load); held || err != nil {
			t.Errorf("HoldSaved(%q): %v %v, want nothing held", name, held, err)
		}
	}
	if err := s.Save(&AppArmorProfile{Name: "../x", Text: "t"}); err == nil {
		t.Error("a profile name with a slash was saved")
	}
}
