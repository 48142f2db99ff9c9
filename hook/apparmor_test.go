package hook

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/internal/confine"
)

// TestHoldAppArmor: prestart holds the profile Apply generated (and loads
// it again when another container's stop removed it), never an engine's
// own profile, and a container id cannot name a holder file elsewhere.
func TestHoldAppArmor(t *testing.T) {
	state := confine.AppArmorState{Dir: t.TempDir()}
	ours := &confine.AppArmorProfile{Name: "clawos-550e8400-0123456789ab", Text: "text"}
	if err := state.Save(ours); err != nil {
		t.Fatal(err)
	}
	loads := 0
	load := func(*confine.AppArmorProfile) error { loads++; return nil }
	spec := func(name string) *specs.Spec { return &specs.Spec{Process: &specs.Process{ApparmorProfile: name}} }
	for _, tc := range []struct {
		name, profile, id, want string
	}{
		{"generated", ours.Name, "ctr1", ours.Name},
		{"an engine's own", "containers-default-0.50.1", "ctr2", ""},
		{"none", "", "ctr3", ""},
		{"an id with a slash", ours.Name, "../../x", ours.Name},
	} {
		got, err := holdAppArmor(state, spec(tc.profile), tc.id, load)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
	if loads != 1 {
		t.Errorf("loaded %d times, want once (first user)", loads)
	}
	if h := appArmorHolder("../../x"); strings.ContainsAny(h, "/") {
		t.Errorf("holder %q names a path", h)
	}
	if got := state.HeldBy(appArmorHolder("ctr1")); len(got) != 1 || got[0] != ours.Name {
		t.Errorf("ctr1 holds %v", got)
	}
}
