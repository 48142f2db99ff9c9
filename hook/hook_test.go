package hook

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// trusted makes a trusted directory with the probe whitelist, and a
// symlink that leaves it.
func trusted(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	wl := filepath.Join(dir, "trusted")
	if err := os.MkdirAll(filepath.Join(wl, "team"), 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../test/testdata/probe.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "outside.json"), filepath.Join(wl, "probe.json"), filepath.Join(wl, "team", "agent.json")} {
		if err := os.WriteFile(p, raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../outside.json", filepath.Join(wl, "escape.json")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("probe.json", filepath.Join(wl, "alias.json")); err != nil {
		t.Fatal(err)
	}
	return wl
}

func TestReadWhitelist(t *testing.T) {
	dir := trusted(t)
	for _, c := range []struct {
		name string
		code clawerr.Code // Success: read
	}{
		{"probe", clawerr.Success},
		{"probe.json", clawerr.Success},
		{"team/agent", clawerr.Success},
		{"alias", clawerr.Success}, // a symlink that stays inside
		{"escape", clawerr.EPerm},
		{"../outside", clawerr.EPerm},
		{"/etc/passwd", clawerr.EPerm},
		{"team/../probe", clawerr.EPerm},
		{".hidden", clawerr.EPerm},
		{"", clawerr.EPerm},
		{"nope", clawerr.ENoEnt},
	} {
		_, raw, err := ReadWhitelist(dir, AnnotationWhitelist, c.name)
		if got := clawerr.CodeOf(err); got != c.code {
			t.Errorf("%q: code %v (%v), want %v", c.name, got, err, c.code)
		}
		if err == nil && len(raw) == 0 {
			t.Errorf("%q: empty", c.name)
		}
	}
}

func testConfig(t *testing.T) Config {
	t.Helper()
	dir := trusted(t)
	init := filepath.Join(t.TempDir(), "clawos-init")
	os.WriteFile(init, []byte("placeholder: only its existence is checked here"), 0o755)
	cfg := Config{WhitelistDir: dir, StateDir: t.TempDir(), AuditLog: filepath.Join(t.TempDir(), "audit.jsonl"),
		AppArmor: confine.AppArmorOff, Init: init, Hook: "/usr/local/bin/clawos-hook", PlanCache: "off"}.WithDefaults("/usr/local/bin/clawos-hook")
	if err := cfg.Check(); err != nil {
		t.Fatal(err)
	}
	cfg.validate = schema.Plan
	return cfg
}

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(&bytes.Buffer{})
	return l
}

func exampleSpec(ann map[string]string) *specs.Spec {
	s := specconv.Example()
	s.Process.Args = []string{"/agent", "--flag"}
	s.Annotations = ann
	return s
}

func TestApply(t *testing.T) {
	cfg := testConfig(t)
	t.Run("no annotation: untouched", func(t *testing.T) {
		s := exampleSpec(nil)
		before, _ := json.Marshal(s)
		out, err := Apply(s, cfg, quiet())
		after, _ := json.Marshal(s)
		if out != nil || err != nil || !bytes.Equal(before, after) {
			t.Errorf("out %v, err %v, changed %v", out, err, !bytes.Equal(before, after))
		}
	})
	s := exampleSpec(map[string]string{AnnotationWhitelist: "probe"})
	out, err := Apply(s, cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if out.Signature != translate.SignatureValid || out.WhitelistID == "" || out.Digest == "" {
		t.Errorf("outcome %+v", out)
	}
	args := s.Process.Args
	if args[0] != confine.Init || !strings.HasPrefix(args[1], "hex:") || strings.Join(args[len(args)-3:], " ") != "-- /agent --flag" {
		t.Errorf("args %v", args)
	}
	if !s.Process.NoNewPrivileges || len(s.Process.Capabilities.Bounding) != 0 || !s.Root.Readonly {
		t.Errorf("not hardened: nnp %v caps %v ro %v", s.Process.NoNewPrivileges, s.Process.Capabilities, s.Root.Readonly)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActKillProcess {
		t.Errorf("container filter %+v", s.Linux.Seccomp)
	}
	if len(s.Hooks.CreateRuntime) != 1 || len(s.Hooks.Poststop) != 1 {
		t.Errorf("hooks %+v", s.Hooks)
	}
	once, _ := json.Marshal(s)
	if _, err := Apply(s, cfg, quiet()); err != nil {
		t.Fatal(err)
	}
	twice, _ := json.Marshal(s)
	if !bytes.Equal(once, twice) {
		t.Errorf("Apply is not idempotent:\n%s\n%s", once, twice)
	}
	// The engine already runs our prestart from hooks.d: nothing injected.
	s2 := exampleSpec(map[string]string{AnnotationWhitelist: "probe"})
	//lint:ignore SA1019 podman's hooks.d puts prestart hooks here
	s2.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: cfg.Hook, Args: []string{"clawos-hook", "prestart"}}}}
	if _, err := Apply(s2, cfg, quiet()); err != nil {
		t.Fatal(err)
	}
	if len(s2.Hooks.CreateRuntime) != 0 || len(s2.Hooks.Poststop) != 0 {
		t.Errorf("hooks.d engine got injected hooks: %+v", s2.Hooks)
	}
}

func TestApplyRefusals(t *testing.T) {
	cfg := testConfig(t)
	for _, c := range []struct {
		name string
		ann  map[string]string
		edit func(*specs.Spec)
		code clawerr.Code
	}{
		{"missing whitelist", map[string]string{AnnotationWhitelist: "nope"}, nil, clawerr.ENoEnt},
		{"escape", map[string]string{AnnotationWhitelist: "escape"}, nil, clawerr.EPerm},
		{"bad baseline", map[string]string{AnnotationWhitelist: "probe", AnnotationBaseline: "java"}, nil, clawerr.EProto},
		{"unknown slice", map[string]string{AnnotationWhitelist: "probe", AnnotationSlice: "nope.slice"}, nil, clawerr.ENoEnt},
		{"host network with port rules", map[string]string{AnnotationWhitelist: "probe"}, func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.NetworkNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		}, clawerr.EPerm},
		{"no command", map[string]string{AnnotationWhitelist: "probe"}, func(s *specs.Spec) { s.Process.Args = nil }, clawerr.EProto},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := exampleSpec(c.ann)
			if c.edit != nil {
				c.edit(s)
			}
			_, err := Apply(s, cfg, quiet())
			if got := clawerr.CodeOf(err); got != c.code {
				t.Fatalf("code %v (%v), want %v", got, err, c.code)
			}
			// A deferred refusal: the config cannot start, and prestart
			// reports the reason.
			Refuse(s, cfg, err)
			if !strings.HasPrefix(s.Process.Args[0], refusedCommand+" by clawos-hook: ") || strings.Count(s.Process.Args[0], "/") != strings.Count(refusedCommand, "/") ||
				len(filepath.Base(s.Process.Args[0])) > 255 || len(s.Hooks.CreateRuntime) != 1 {
				t.Errorf("refused config: args %v hooks %+v", s.Process.Args, s.Hooks)
			}
			if rerr := refusal(s); clawerr.CodeOf(rerr) != c.code || !strings.Contains(rerr.Error(), "refused at precreate") {
				t.Errorf("prestart would report %v", rerr)
			}
		})
	}
}

// TestPrestartChecksTheConfig checks that prestart (and the wrapper's
// createRuntime work, which shares carries) refuses a config that lost any
// part of its profile, in both forms: precreate's (the runtime loads the
// container stage from linux.seccomp) and the wrapper's (clawos-init loads
// it from its command line, and the config has no linux.seccomp).
func TestPrestartChecksTheConfig(t *testing.T) {
	cfg := testConfig(t)
	precreate := func(t *testing.T) *specs.Spec {
		s := exampleSpec(map[string]string{AnnotationWhitelist: "probe"})
		if _, err := Apply(s, cfg, quiet()); err != nil {
			t.Fatal(err)
		}
		return s
	}
	wrapper := func(t *testing.T) *specs.Spec {
		s := exampleSpec(map[string]string{AnnotationWhitelist: "probe"})
		if _, _, err := apply(s, cfg, quiet(), false, true); err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Another whitelist's container stage, compiled: a filter clawos-init
	// would load without complaint.
	other := exampleSpec(map[string]string{AnnotationWhitelist: "probe", AnnotationBaseline: "start,tokio"})
	if _, _, err := apply(other, cfg, quiet(), false, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		form func(*testing.T) *specs.Spec
		edit func(*specs.Spec)
		want string
	}{
		{"agent filter swapped", precreate, func(s *specs.Spec) { s.Process.Args[1] = "hex:00" }, "not loaded by clawos-init"},
		{"container filter widened", precreate, func(s *specs.Spec) { s.Linux.Seccomp.DefaultAction = specs.ActAllow }, "filter differs"},
		{"container filter removed", precreate, func(s *specs.Spec) { s.Linux.Seccomp = nil }, "has no seccomp filter"},
		{"agent digest edited", precreate, func(s *specs.Spec) { s.Annotations[confine.AnnotationAgentDigest] = "sha256:0" }, "agent stage"},
		{"no_new_privs off", precreate, func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, "no_new_privs"},
		{"whitelist annotation removed", precreate, func(s *specs.Spec) { delete(s.Annotations, AnnotationWhitelist) }, "no whitelist annotation"},
		{"precreate's form with another container filter for clawos-init", precreate, func(s *specs.Spec) {
			s.Process.Args = append(append([]string{s.Process.Args[0], s.Process.Args[1]}, other.Process.Args[2:4]...), s.Process.Args[2:]...)
		}, "not the whitelist's container stage"},
		{"wrapper: agent filter swapped", wrapper, func(s *specs.Spec) { s.Process.Args[1] = "hex:00" }, "not loaded by clawos-init"},
		{"wrapper: container filter swapped", wrapper, func(s *specs.Spec) { s.Process.Args[3] = other.Process.Args[3] }, "not the whitelist's container stage"},
		{"wrapper: container filter dropped", wrapper, func(s *specs.Spec) {
			s.Process.Args = append(s.Process.Args[:2:2], s.Process.Args[4:]...)
		}, "has no seccomp filter"},
		{"wrapper: container digest edited", wrapper, func(s *specs.Spec) { s.Annotations[translate.AnnotationProfileDigest] = "sha256:0" }, "filter differs"},
		{"wrapper: another stage in linux.seccomp", wrapper, func(s *specs.Spec) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
		}, "filter differs"},
		{"wrapper: no_new_privs off", wrapper, func(s *specs.Spec) { s.Process.NoNewPrivileges = false }, "no_new_privs"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.form(t)
			c.edit(s)
			bundle := t.TempDir()
			b, _ := json.Marshal(s)
			os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
			_, err := Prestart(&specs.State{ID: "c1", Pid: os.Getpid(), Bundle: bundle}, cfg, quiet())
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a refusal with %q", err, c.want)
			}
			if !errors.Is(err, clawerr.ErrPerm) {
				t.Errorf("code %v, want EPERM", clawerr.CodeOf(err))
			}
		})
	}
	// Both forms as made pass the check (prestart then goes on to the
	// namespaces, which this test process shares with the host).
	for name, form := range map[string]func(*testing.T) *specs.Spec{"precreate": precreate, "wrapper": wrapper} {
		t.Run(name+": carried", func(t *testing.T) {
			s := form(t)
			req := runcargs.Requested(s.Annotations)
			plan, err := planFor(s, req, cfg.Runtime, cfg, &Outcome{}, quiet())
			if err != nil {
				t.Fatal(err)
			}
			if err := carries(s, plan); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConfigCheck(t *testing.T) {
	good := Config{}.WithDefaults("/usr/local/bin/clawos-hook")
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		edit func(*Config)
		path string
	}{
		{"relative whitelist dir", func(c *Config) { c.WhitelistDir = "whitelists" }, "whitelist_dir"},
		{"apparmor mode", func(c *Config) { c.AppArmor = "maybe" }, "apparmor"},
		{"timeout", func(c *Config) { c.Timeout = "-1s" }, "timeout"},
	} {
		cfg := good
		c.edit(&cfg)
		var ce *clawerr.Error
		if err := cfg.Check(); !errors.As(err, &ce) || ce.Path != c.path {
			t.Errorf("%s: %v, want an error at %s", c.name, err, c.path)
		}
	}
	if _, err := ReadConfig(filepath.Join(t.TempDir(), "absent.json"), true); err != nil {
		t.Errorf("absent config: %v", err)
	}
	p := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(p, []byte(`{"whitelist_dirs": "/x"}`), 0o644)
	if _, err := ReadConfig(p, true); clawerr.CodeOf(err) != clawerr.EProto {
		t.Errorf("unknown field: %v", err)
	}
}

func TestAuditRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log", "audit.jsonl")
	recs := []Record{
		NewRecord("precreate", "", &Outcome{Whitelist: "probe", Signature: translate.SignatureValid}, nil),
		NewRecord("prestart", "c1", &Outcome{Whitelist: "probe"}, nil),
		NewRecord("prestart", "c2", &Outcome{Whitelist: "nope"}, clawerr.New(clawerr.ENoEnt, "missing")),
		NewRecord("poststop", "c1", nil, nil),
		NewRecord("prestart", "c3", nil, nil),
	}
	want := []string{DecisionApplied, DecisionAllowed, DecisionRefused, DecisionCleaned, DecisionPassthrough}
	for i, r := range recs {
		if r.Decision != want[i] {
			t.Errorf("record %d: decision %s, want %s", i, r.Decision, want[i])
		}
		if err := Append(path, r); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != len(recs) {
		t.Fatalf("%d lines", len(lines))
	}
	var r Record
	if err := json.Unmarshal([]byte(lines[2]), &r); err != nil || r.Code != "ENOENT" || r.ContainerID != "c2" {
		t.Errorf("line 3: %+v %v", r, err)
	}
}

// TestShippedFiles checks the files make install ships: the hooks.d files
// (schema 1.0.0, one stage each, matching the annotation) and the runtime
// wrapper's configuration.
func TestShippedFiles(t *testing.T) {
	for _, stage := range []string{"precreate", "prestart", "poststop"} {
		raw, err := os.ReadFile("hooks.d/clawos-" + stage + ".json")
		if err != nil {
			t.Fatal(err)
		}
		var h struct {
			Version string `json:"version"`
			Hook    struct {
				Path    string   `json:"path"`
				Args    []string `json:"args"`
				Timeout int      `json:"timeout"`
			} `json:"hook"`
			When struct {
				Annotations map[string]string `json:"annotations"`
			} `json:"when"`
			Stages []string `json:"stages"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&h); err != nil {
			t.Fatalf("%s: %v", stage, err)
		}
		if h.Version != "1.0.0" || len(h.Stages) != 1 || h.Stages[0] != stage || h.Hook.Args[len(h.Hook.Args)-1] != stage ||
			h.When.Annotations[`^io\.clawos\.whitelist$`] != ".*" || !filepath.IsAbs(h.Hook.Path) || h.Hook.Timeout < 10 {
			t.Errorf("%s: %+v", stage, h)
		}
	}
	cfg, err := ReadConfig("../deploy/runtime.json", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.WithDefaults("/usr/local/bin/clawos-runc").Check(); err != nil {
		t.Error(err)
	}
}

// TestReadWhitelistTrust checks the OpenSSH-style trust of the whitelist
// directory: a whitelist is refused when it, or any directory above it, is
// writable by group or others (a root-owned sticky directory excepted), or
// is owned by another user; the signature alone could not tell.
func TestReadWhitelistTrust(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(dir, file string) error
		ok    bool
	}{
		{"owner-only", func(dir, file string) error { return nil }, true},
		{"group-writable file", func(dir, file string) error { return os.Chmod(file, 0o664) }, false},
		{"world-writable file", func(dir, file string) error { return os.Chmod(file, 0o646) }, false},
		{"world-writable directory", func(dir, file string) error { return os.Chmod(dir, 0o777) }, false},
		{"world-writable parent", func(dir, file string) error { return os.Chmod(filepath.Dir(dir), 0o777) }, false},
		{"sticky world-writable parent not owned by root", func(dir, file string) error {
			if os.Geteuid() != 0 {
				return nil
			}
			if err := os.Chmod(filepath.Dir(dir), os.ModeSticky|0o777); err != nil {
				return err
			}
			return os.Chown(filepath.Dir(dir), 1234, 1234)
		}, os.Geteuid() != 0},
		{"file of another user", func(dir, file string) error {
			if os.Geteuid() != 0 {
				return os.Chmod(file, 0o666) // stands in: refused too
			}
			return os.Chown(file, 1234, 1234)
		}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			parent := filepath.Join(t.TempDir(), "parent")
			dir := filepath.Join(parent, "whitelists")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(parent, 0o755)
			raw, err := os.ReadFile("../test/testdata/probe.whitelist.json")
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, "probe.json")
			if err := os.WriteFile(file, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := c.setup(dir, file); err != nil {
				t.Fatal(err)
			}
			_, _, err = ReadWhitelist(dir, AnnotationWhitelist, "probe")
			if (err == nil) != c.ok {
				t.Errorf("err %v, want ok %v", err, c.ok)
			}
			if err != nil && (clawerr.CodeOf(err) != clawerr.EPerm || !strings.Contains(err.Error(), "not trusted")) {
				t.Errorf("err %v: want EPERM, not trusted", err)
			}
		})
	}
}

// TestAuditBounds checks that one audit record stays small whatever the
// annotations held (a 4 MB name), and that the log is rotated at
// MaxAuditLog instead of growing without end.
func TestAuditBounds(t *testing.T) {
	cfg := testConfig(t)
	huge := strings.Repeat("x", 4<<20)
	s := exampleSpec(map[string]string{AnnotationWhitelist: huge})
	out, err := Apply(s, cfg, quiet())
	if err == nil {
		t.Fatal("a 4 MB whitelist name was accepted")
	}
	if len(err.Error()) > 4096 {
		t.Errorf("the refusal is %d bytes", len(err.Error()))
	}
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	if err := Append(log, NewRecord("precreate", huge, out, err)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(log); fi.Size() > 4096 {
		t.Errorf("one record of a refused 4 MB annotation is %d bytes", fi.Size())
	}
	if err := os.Truncate(log, MaxAuditLog-10); err != nil {
		t.Fatal(err)
	}
	if err := Append(log, NewRecord("precreate", "c", nil, nil)); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(log + ".1"); err != nil || fi.Size() != MaxAuditLog-10 {
		t.Errorf("the full log was not rotated to .1: %v", err)
	}
	if fi, _ := os.Stat(log); fi.Size() > 1024 {
		t.Errorf("the new log is %d bytes", fi.Size())
	}
}

// TestApplyValidation checks the hook's whitelist lookup: without
// clawos-policy a container that names a whitelist is refused (never run
// unvalidated); with the plan cache, a second container of the same
// whitelist is not validated again, and a tampered whitelist is refused
// with its signature state though a valid one of the same name was cached.
func TestApplyValidation(t *testing.T) {
	cfg := testConfig(t)
	cfg.validate, cfg.Policy = nil, "/nonexistent/clawos-policy"
	s := exampleSpec(map[string]string{AnnotationWhitelist: "probe"})
	before, _ := json.Marshal(s)
	if _, err := Apply(s, cfg, quiet()); err == nil || !strings.Contains(err.Error(), "clawos-policy") {
		t.Errorf("without clawos-policy: %v, want a refusal", err)
	}
	if after, _ := json.Marshal(s); !bytes.Equal(before, after) {
		t.Error("a refused container's config was changed")
	}

	cfg = testConfig(t)
	cfg.PlanCache = filepath.Join(t.TempDir(), "plans")
	// The programs the entries are for must exist: their identity is part
	// of the key.
	progs := t.TempDir()
	cfg.Hook, cfg.Policy = filepath.Join(progs, "clawos-hook"), filepath.Join(progs, "clawos-policy")
	for _, p := range []string{cfg.Hook, cfg.Policy} {
		if err := os.WriteFile(p, []byte(p), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	validated := 0
	cfg.validate = func(raw []byte, opts translate.Options, key string) (plancache.Result, error) {
		validated++
		return schema.Plan(raw, opts, key)
	}
	for i := 0; i < 2; i++ {
		if _, err := Apply(exampleSpec(map[string]string{AnnotationWhitelist: "probe"}), cfg, quiet()); err != nil {
			t.Fatal(err)
		}
	}
	if validated != 1 {
		t.Errorf("two containers of one whitelist validated %d times, want 1", validated)
	}
	path := filepath.Join(cfg.WhitelistDir, "probe.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tampered := bytes.Replace(raw, []byte(`"permission": "DENY"`), []byte(`"permission": "ALLOW"`), 1)
	if err := os.WriteFile(path, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := Apply(exampleSpec(map[string]string{AnnotationWhitelist: "probe"}), cfg, quiet())
	if err == nil || out == nil || out.Signature != translate.SignatureMismatch {
		t.Errorf("a tampered whitelist: %+v, %v, want refused as a signature mismatch", out, err)
	}
}
