package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/internal/killlog"
)

// TestQuickFile: clawos-poststop's file is the id, the mark and the audit
// record Poststop writes for the record (NewRecord, decision cleaned),
// after its time: the time clawos-poststop stamps and the tail make the
// line clawos-hook would write. No file where poststop has more to do.
func TestQuickFile(t *testing.T) {
	mark := &killlog.Mark{Pid: 30, Sleeps: 82448}
	rec := record{ID: "c-1", Whitelist: "probe", WhitelistID: "wl-1", Digest: "sha256:ab", Pid: 42, Audit: mark}
	b, ok, err := quickFile(rec)
	if err != nil || !ok {
		t.Fatalf("quickFile: %v %v", ok, err)
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) != 5 || lines[0] != quickFileVersion || lines[1] != "id c-1" || lines[2] != "mark 30 82448" || lines[4] != "" {
		t.Fatalf("file:\n%s", b)
	}
	at := time.Date(2026, 12, 3, 4, 36, 51, 810923210, time.UTC)
	stamp, _ := json.Marshal(at)
	line := `{"time":` + string(stamp) + lines[3]
	want := NewRecord("poststop", "c-1", &Outcome{Whitelist: "probe", WhitelistID: "wl-1", Digest: "sha256:ab"}, nil)
	want.Time = at
	wb, _ := json.Marshal(want)
	if line != string(wb) {
		t.Errorf("the stamped line\n%s\nis not clawos-hook's\n%s", line, wb)
	}
	if want.Decision != DecisionCleaned {
		t.Errorf("decision %q", want.Decision)
	}
	for _, c := range []struct {
		name string
		rec  record
	}{
		{"no mark", record{ID: "c-1"}},
		{"port rules in a joined namespace", record{ID: "c-1", NetNS: "/run/netns/p", Table: "clawos-c-1", Audit: mark}},
		{"an AppArmor profile held", record{ID: "c-1", AppArmor: "clawos-probe", Audit: mark}},
		{"an id clawos-poststop does not read", record{ID: "-x", Audit: mark}},
	} {
		if b, ok, err := quickFile(c.rec); ok || err != nil || b != nil {
			t.Errorf("%s: %q %v %v", c.name, b, ok, err)
		}
	}
}

// TestSyncQuickFile: written only where the config's poststop hook is
// clawos-poststop and there is nothing else to do; otherwise a file left
// by an earlier container of the id is removed (clawos-poststop would act
// on it: no port rules removed, no profile released).
func TestSyncQuickFile(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "clawos-poststop")
	if err := os.WriteFile(prog, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := Config{StateDir: dir, AuditLog: filepath.Join(dir, "audit.jsonl"), Poststop: prog}.WithDefaults(filepath.Join(dir, "clawos-hook"))
	quick := &specs.Spec{}
	inject(quick, cfg, true)
	if len(quick.Hooks.Poststop) != 1 || quick.Hooks.Poststop[0].Path != prog || quick.Hooks.Poststop[0].Args[6] != cfg.Hook ||
		quick.Hooks.Poststop[0].Args[len(quick.Hooks.Poststop[0].Args)-1] != "poststop" {
		t.Fatalf("injected poststop hook: %+v", quick.Hooks.Poststop)
	}
	plain := &specs.Spec{}
	inject(plain, Config{StateDir: dir, Poststop: PoststopOff}.WithDefaults(filepath.Join(dir, "clawos-hook")), true)
	if plain.Hooks.Poststop[0].Path != cfg.Hook {
		t.Fatalf("poststop off: %+v", plain.Hooks.Poststop)
	}
	missing := &specs.Spec{}
	inject(missing, Config{StateDir: dir}.WithDefaults(filepath.Join(dir, "elsewhere", "clawos-hook")), true)
	if missing.Hooks.Poststop[0].Path == filepath.Join(dir, "elsewhere", "clawos-poststop") {
		t.Fatalf("clawos-poststop not installed, injected anyway: %+v", missing.Hooks.Poststop)
	}
	mark := &killlog.Mark{Pid: 30, Sleeps: 7}
	path := quickPath(cfg, "c-1")
	for _, c := range []struct {
		name  string
		spec  *specs.Spec
		rec   record
		stale bool
		want  bool
	}{
		{"quick", quick, record{ID: "c-1", Audit: mark}, false, true},
		{"quick, replacing a stale file", quick, record{ID: "c-1", Audit: mark}, true, true},
		{"port rules", quick, record{ID: "c-1", NetNS: "/run/netns/p", Table: "t", Audit: mark}, true, false},
		{"no mark", quick, record{ID: "c-1"}, true, false},
		{"clawos-hook's poststop", plain, record{ID: "c-1", Audit: mark}, true, false},
	} {
		os.Remove(path)
		if c.stale {
			os.WriteFile(path, []byte("clawos-poststop 1\nid c-1\nmark 1 1\nstale\n"), 0o600)
		}
		if err := syncQuickFile(cfg, c.spec, c.rec); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		switch {
		case c.want && (err != nil || strings.Contains(string(b), "stale") || fi.Mode().Perm() != 0o600):
			t.Errorf("%s: want a fresh file of mode 0600: %q %v", c.name, b, err)
		case !c.want && err == nil:
			t.Errorf("%s: a file is left: %q", c.name, b)
		}
	}
	// Poststop removes it, whoever left it.
	os.WriteFile(path, []byte("x"), 0o600)
	if _, err := Poststop(&specs.State{ID: "c-1"}, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("Poststop left clawos-poststop's file: %v", err)
	}
}
