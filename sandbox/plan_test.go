package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	goruntime "runtime"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/golden"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// staticELF is the smallest file the resolver takes for a static program:
// an ELF64 header without program headers (no PT_INTERP).
func staticELF() []byte {
	h := make([]byte, 64)
	copy(h, "\x7fELF\x02\x01\x01")
	h[16], h[18] = 2, 62 // ET_EXEC, EM_X86_64
	h[20] = 1            // EV_CURRENT
	h[52] = 64           // e_ehsize
	return h
}

// testRoot is a root filesystem with a static program (/bin/tool) and a
// script run by it (/app/agent).
func testRoot(t testing.TB) string {
	root := t.TempDir()
	for p, body := range map[string]string{"bin/tool": string(staticELF()), "app/agent": "#!/bin/tool\n"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// testHost is a fixed host: the plans made on it are the same on every
// machine.
func testHost(euid int) Host {
	return Host{EUID: euid, EGID: euid, Cwd: "/home/user/project", Home: "/home/user", Init: "/opt/clawos/bin/clawos-init",
		LandlockABI: 7, MemfdNoexec: true, HardLimits: map[string]uint64{"RLIMIT_NOFILE": 524288, "RLIMIT_NPROC": 95000},
		Rand: rand.NewChaCha8([32]byte{'c', 'l', 'a', 'w'}), Validate: schema.Plan}
}

func quiet() *logrus.Logger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// TestPlanGolden pins the plan of each kind of sandbox on a fixed host:
// the OCI config, the agent stage and the modes, as --print-spec prints
// them. A root filesystem (or a bundle's) keeps the host's directories out
// of the plan, so the golden files hold on every machine of an
// architecture.
func TestPlanGolden(t *testing.T) {
	if goruntime.GOARCH != "amd64" {
		t.Skip("the golden plans are x86_64's (the stages name the architecture)")
	}
	const wl = "../examples/ironclaw.whitelist.json"
	bundle := t.TempDir()
	bundleRoot := testRoot(t)
	cfgJSON, _ := json.Marshal(map[string]any{"ociVersion": "1.0.2", "root": map[string]any{"path": bundleRoot},
		"process": map[string]any{"args": []string{"/app/agent", "--serve"}, "cwd": "/app", "env": []string{"PATH=/bin", "LANG=C"}},
		"mounts":  []map[string]any{{"destination": "/data", "type": "tmpfs", "source": "tmpfs"}, {"destination": "/sys", "type": "sysfs", "source": "sysfs"}}})
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfgJSON, 0o644); err != nil {
		t.Fatal(err)
	}
	root := testRoot(t)
	for _, tc := range []struct {
		name string
		euid int
		cfg  Config
	}{
		{"root", 0, Config{Whitelist: wl, Rootfs: root, Command: []string{"/app/agent", "-v"}, AppArmor: "off"}},
		{"rootless", 1000, Config{Whitelist: wl, Rootfs: root, Command: []string{"/app/agent"}, AppArmor: "off"}},
		{"options", 0, Config{Whitelist: wl, Rootfs: root, Command: []string{"/app/agent"}, AppArmor: "off", Net: "none", Init: true,
			TTY: true, Env: []string{"TOKEN=x"}, Hostname: "box", Tmpfs: []string{"/scratch"}, Chdir: "/app", Baseline: "none"}},
		{"exec-allowed", 0, Config{Whitelist: "../test/testdata/exec-allowed.whitelist.json", Rootfs: root, Command: []string{"/app/agent"}, AppArmor: "off"}},
		{"learn", 0, Config{Learn: "/nonexistent/learned.json", Rootfs: root, Command: []string{"/app/agent"}}},
		{"host-net", 0, Config{Whitelist: wl, Rootfs: root, Command: []string{"/app/agent"}, AppArmor: "off", Net: "host"}},
		{"bundle", 0, Config{Whitelist: wl, Bundle: bundle, AppArmor: "off", ID: "given-id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.StateDir = "/run/clawos-golden"
			p, err := NewPlan(tc.cfg, testHost(tc.euid), quiet())
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if err := p.PrintSpec(&out); err != nil {
				t.Fatal(err)
			}
			got := strings.NewReplacer(root, "$ROOTFS", bundleRoot, "$BUNDLE_ROOT", bundle, "$BUNDLE").Replace(out.String())
			golden.Check(t, "plan-"+tc.name+".json", []byte(got))
		})
	}
}

// TestPlanChangesNothing: a plan reads and writes nothing of the host's
// but what it is given (no bundle, no state directory), and two plans of
// one config on one host are the same.
func TestPlanChangesNothing(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	cfg := Config{Whitelist: "../examples/ironclaw.whitelist.json", Rootfs: testRoot(t), Command: []string{"/app/agent"}, AppArmor: "off", StateDir: state}
	a, err := NewPlan(cfg, testHost(0), quiet())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPlan(cfg, testHost(0), quiet())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("planning created the state directory: %v", err)
	}
	if !reflect.DeepEqual(a.Spec, b.Spec) {
		t.Error("two plans of one config on one host differ")
	}
	// A run's copy of the spec is its own: staging mounts in it leaves the
	// plan as it was.
	c := a.specCopy()
	c.Mounts[0].Source = "/elsewhere"
	if a.Spec.Mounts[0].Source == "/elsewhere" {
		t.Error("a run's spec shares its mounts with the plan")
	}
}

// TestPlanRefusals: what a plan refuses, with the P1.7 code or the usage
// error clawos-run exits 125 for, and a command not found (127).
func TestPlanRefusals(t *testing.T) {
	root := testRoot(t)
	wl := "../examples/ironclaw.whitelist.json"
	for _, tc := range []struct {
		name  string
		euid  int
		cfg   Config
		usage bool
		code  clawerr.Code
		want  string
		abi   int
	}{
		{"no whitelist", 0, Config{Command: []string{"/app/agent"}}, true, 0, "--whitelist is required", 0},
		{"no command", 0, Config{Whitelist: wl}, true, 0, "no command", 0},
		{"learn and whitelist", 0, Config{Whitelist: wl, Learn: "x.json", Command: []string{"a"}}, true, 0, "--learn records a new whitelist", 0},
		{"bad net", 0, Config{Whitelist: wl, Net: "bridge", Command: []string{"a"}}, true, 0, `--net "bridge"`, 0},
		{"bad apparmor", 0, Config{Whitelist: wl, AppArmor: "maybe", Command: []string{"a"}}, true, 0, `--apparmor "maybe"`, 0},
		{"relative chdir", 0, Config{Whitelist: wl, Chdir: "app", Command: []string{"a"}}, true, 0, "--chdir takes an absolute path", 0},
		{"workdir over /etc", 0, Config{Whitelist: wl, Workdir: "/etc/apt", Command: []string{"/bin/true"}}, true, 0, "--workdir /etc/apt would bind", 0},
		{"rootless without userns", 1000, Config{Whitelist: wl, Rootfs: root, NoUserNS: true, Command: []string{"/app/agent"}, AppArmor: "off"}, true, 0, "needs a user namespace", 0},
		{"rootless slice on cgroup v1", 1000, Config{Whitelist: wl, Rootfs: root, Slice: "agents", Command: []string{"/app/agent"}, AppArmor: "off"}, false, clawerr.EPerm, "P1.5 quotas need cgroups", 0},
		{"host network, port rules, no Landlock network rules", 0, Config{Whitelist: wl, Rootfs: root, Net: "host", Command: []string{"/app/agent"}, AppArmor: "off"}, false, clawerr.EPerm, "without Landlock's network rules", 3},
		{"host network, port rules, Landlock off", 0, Config{Whitelist: wl, Rootfs: root, Net: "host", Landlock: "off", Command: []string{"/app/agent"}, AppArmor: "off"}, false, clawerr.EPerm, "without Landlock's network rules", 0},
		{"memfd exec without noexec", 1000, Config{Whitelist: "../test/testdata/exec-attacks-allowed.whitelist.json", Rootfs: root, Command: []string{"/app/agent"}, AppArmor: "off"}, false, clawerr.EPerm, "memfd", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost(tc.euid)
			h.MemfdNoexec = tc.euid == 0
			if tc.abi != 0 {
				h.LandlockABI = tc.abi
			}
			_, err := NewPlan(tc.cfg, h, quiet())
			var u *UsageError
			switch {
			case err == nil:
				t.Fatal("planned")
			case !strings.Contains(err.Error(), tc.want):
				t.Errorf("%v, want %q", err, tc.want)
			case tc.usage != errors.As(err, &u):
				t.Errorf("%v: usage error %v, want %v", err, !tc.usage, tc.usage)
			case !tc.usage && clawerr.CodeOf(err) != tc.code:
				t.Errorf("%v: code %v, want %v", err, clawerr.CodeOf(err), tc.code)
			}
		})
	}
	_, err := NewPlan(Config{Whitelist: wl, Rootfs: root, Command: []string{"/app/missing"}, AppArmor: "off"}, testHost(0), quiet())
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("a missing command: %v, want ErrNotFound", err)
	}
}

// BenchmarkNewPlan measures everything clawos-run does before it runs the
// OCI runtime: validation, both stages, compilation, the spec.
//
// "validate" validates every time (no plan cache); "cached" is a warm plan
// cache's path, the one clawos-run takes at every start but the first of
// a whitelist.
func BenchmarkNewPlan(b *testing.B) {
	root := testRoot(b)
	cfg := Config{Whitelist: "../examples/ironclaw.whitelist.json", Rootfs: root, Command: []string{"/app/agent"}, AppArmor: "off"}
	cached := testHost(os.Geteuid())
	cached.PlanCache, cached.Build = filepath.Join(b.TempDir(), "plans"), "bench-build"
	for _, c := range []struct {
		name string
		host Host
	}{{"validate", testHost(0)}, {"cached", cached}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if _, err := NewPlan(cfg, c.host, quiet()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
func TestResolveEnv(t *testing.T) {
	lookup := func(k string) (string, bool) {
		v, ok := map[string]string{"TOKEN": "s3cret", "EMPTY": ""}[k]
		return v, ok
	}
	file := filepath.Join(t.TempDir(), "env")
	os.WriteFile(file, []byte("# comment\n\nA=1\nTOKEN\n  B = x\n"), 0o600)
	for _, c := range []struct {
		name  string
		flags []string
		file  string
		want  []string
		err   bool
	}{
		{"K=V", []string{"A=1", "B=two=2"}, "", []string{"A=1", "B=two=2"}, false},
		{"K from the caller", []string{"TOKEN", "EMPTY"}, "", []string{"TOKEN=s3cret", "EMPTY="}, false},
		{"K unset is refused", []string{"NOPE"}, "", nil, true},
		{"an empty name is refused", []string{"=x"}, "", nil, true},
		{"a file", nil, file, nil, true}, // "B = x": a name with a space
	} {
		got, err := ResolveEnv(c.flags, c.file, lookup)
		if (err != nil) != c.err || (!c.err && !reflect.DeepEqual(got, c.want)) {
			t.Errorf("%s: %v %v, want %v (error %v)", c.name, got, err, c.want, c.err)
		}
	}
	os.WriteFile(file, []byte("# comment\n\nA=1\nTOKEN\n"), 0o600)
	if got, err := ResolveEnv([]string{"C=3"}, file, lookup); err != nil || !reflect.DeepEqual(got, []string{"C=3", "A=1", "TOKEN=s3cret"}) {
		t.Errorf("--env-file: %v %v", got, err)
	}
}

// TestPlanCacheUse: a whitelist is validated once per content and
// options; the second plan comes from the cache, a changed whitelist or
// option misses, a damaged entry is validated again, and an unusable cache
// directory means validation every time, never none.
func TestPlanCacheUse(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "wl.json")
	ref, _ := os.ReadFile("../examples/ironclaw.whitelist.json")
	os.WriteFile(wl, ref, 0o644)
	calls := 0
	host := func(cache string) Host {
		h := testHost(0)
		h.EUID = os.Geteuid()
		h.PlanCache, h.Build = cache, "test-build"
		h.Validate = func(raw []byte, opts translate.Options, key string) (plancache.Result, error) {
			calls++
			return schema.Plan(raw, opts, key)
		}
		return h
	}
	cache := filepath.Join(dir, "plans")
	cfg := Config{Whitelist: wl, Rootfs: testRoot(t), Command: []string{"/app/agent"}, AppArmor: "off"}
	plan := func(h Host, c Config) *Plan {
		t.Helper()
		p, err := NewPlan(c, h, quiet())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := plan(host(cache), cfg)
	second := plan(host(cache), cfg)
	if calls != 1 {
		t.Fatalf("validated %d times for two plans of one whitelist, want 1", calls)
	}
	if !reflect.DeepEqual(first.Spec, second.Spec) {
		t.Error("the plan from the cache differs from the validated one")
	}
	withBaseline := cfg
	withBaseline.Baseline = "none"
	plan(host(cache), withBaseline)
	if calls != 2 {
		t.Errorf("another baseline: %d validations, want 2", calls)
	}
	os.WriteFile(wl, append(ref, '\n'), 0o644)
	plan(host(cache), cfg)
	if calls != 3 {
		t.Errorf("a changed whitelist: %d validations, want 3", calls)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	for _, e := range entries {
		os.WriteFile(e, []byte(`{"digest":"x","entry":{}}`), 0o600)
	}
	plan(host(cache), cfg)
	if calls != 4 {
		t.Errorf("a damaged entry: %d validations, want 4", calls)
	}
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	plan(host(open), cfg)
	plan(host(open), cfg)
	if calls != 6 {
		t.Errorf("an unusable cache: %d validations, want 6", calls)
	}
	// An invalid whitelist is refused with its errors, and never cached.
	os.WriteFile(wl, []byte(`{"schema_version":"1.0.0"}`), 0o644)
	for i := 0; i < 2; i++ {
		if _, err := NewPlan(cfg, host(cache), quiet()); err == nil || !strings.Contains(err.Error(), "missing properties") {
			t.Errorf("an invalid whitelist: %v", err)
		}
	}
	if calls != 8 {
		t.Errorf("an invalid whitelist: %d validations, want 8 (never cached)", calls)
	}
}
