package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// realProgram is a program learn mode is proven on.
type realProgram struct {
	name  string
	flags []string // clawos-run flags (binds)
	cmd   []string
	want  string // in its standard output
	// runs is how many learn runs are merged: a runtime makes some calls
	// only when its timing asks for them (see timing).
	runs int
	// timing are the calls its runtime makes only when timing asks for
	// them (Go's preemption signals, a spinning thread's sched_yield),
	// measured independently (baseline measurements): the not-padded
	// check cannot require them in every run.
	timing map[string]bool
}

// measured is the union of the calls of a baseline's measurements whose
// program name starts with prefix ("" for all).
func measured(t *testing.T, baseline, prefix string) map[string]bool {
	t.Helper()
	calls, err := translate.Baseline(translate.NativeArch(), baseline)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, c := range calls {
		for _, p := range c.MeasuredIn {
			if strings.HasPrefix(p, prefix) {
				set[c.Name] = true
			}
		}
	}
	if len(set) == 0 {
		t.Fatalf("no measurement %q in baseline %s", prefix, baseline)
	}
	return set
}

// tokioTarget caches the tokio program's build: Debian's crates, offline.
const tokioTarget = "/var/cache/clawos-test/tokio-target"

var tokioOnce sync.Once

// buildTokio builds test/agents/tokio-agent with cargo from Debian's
// crates (librust-tokio-dev; .cargo/config.toml replaces crates.io with
// /usr/share/cargo/registry), offline.
func buildTokio(t *testing.T) string {
	t.Helper()
	var err error
	var out []byte
	tokioOnce.Do(func() {
		cmd := exec.Command("cargo", "build", "--release", "--offline", "-q")
		cmd.Dir = "agents/tokio-agent"
		cmd.Env = append(os.Environ(), "CARGO_TARGET_DIR="+tokioTarget)
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("cargo build of the tokio agent (.ci/setup installs cargo and librust-tokio-dev): %v\n%s", err, out)
	}
	return built(t, tokioTarget+"/release/tokio-agent")
}

// realPrograms builds the programs of the learn tests.
func realPrograms(t *testing.T) []realProgram {
	dir := t.TempDir()
	gobin := filepath.Join(dir, "goworker")
	if out, err := exec.Command("go", "build", "-o", gobin, "./agents/goworker").CombinedOutput(); err != nil {
		t.Fatalf("go build goworker: %v\n%s", err, out)
	}
	os.Chmod(dir, 0o755)
	py := built(t, "agents/pyworker.py")
	return []realProgram{
		{"busybox pipeline", nil, []string{"/bin/busybox", "sh", "-c", "busybox echo hello world | busybox tr a-z A-Z | busybox wc -c"}, "12", 1, nil},
		{"Go", nil, []string{gobin}, "ok", 3, measured(t, "runtime-runc", "gostress")},
		{"Python", []string{"--ro-bind", py + ":/opt/pyworker.py"}, []string{"/usr/bin/python3", "-I", "/opt/pyworker.py"}, "ok", 1, nil},
		{"tokio", nil, []string{buildTokio(t)}, "tokio-agent ok", 3, measured(t, "tokio", "")},
	}
}

// TestLearn learns real programs in the sandbox, then proves the learned
// whitelist: it validates, the program runs enforced under it alone
// (--baseline none) and under --complain with no violation, and it is not
// padded: without any one of its calls the program is killed.
func TestLearn(t *testing.T) {
	s := requireSandbox(t)
	s.runtime = "embedded"
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range realPrograms(t) {
		t.Run(p.name, func(t *testing.T) {
			dir := t.TempDir()
			os.Chmod(dir, 0o755)
			out := filepath.Join(dir, "learned.json")
			run := func(args ...string) runResult {
				return s.clawosRun(t, append(append(append([]string{}, p.flags...), args...), append([]string{"--"}, p.cmd...)...)...)
			}
			// A runtime's timing-dependent calls (p.timing) can first show
			// up after the learn runs: where the enforced or complaining run
			// meets one the learned whitelist lacks, learning goes on with
			// one more merged run, as a user would, at most extraLearnRounds
			// times; any other call fails at once.
			var wl *translate.Whitelist
			for round := 0; ; round++ {
				runs := p.runs
				if round > 0 {
					runs = 1
				}
				for k := 0; k < runs; k++ {
					args := []string{"--learn", out}
					if round > 0 || k > 0 {
						args = append(args, "--merge", out)
					}
					if r := run(args...); r.code != 0 || !strings.Contains(r.stdout, p.want) {
						t.Fatalf("learn: exit %d\n%s%s", r.code, r.stdout, r.stderr)
					}
				}
				raw, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				var rep translate.Report
				wl, rep = v.Validate(raw, translate.Options{})
				if err := rep.Err(); err != nil {
					t.Fatalf("the learned whitelist does not validate: %v", err)
				}
				if rep.Signature != translate.SignatureValid {
					t.Errorf("signature %s", rep.Signature)
				}
				if r := run("--whitelist", out, "--baseline", "none"); r.code != 0 || !strings.Contains(r.stdout, p.want) {
					if call := killedAt(r); r.code == 128+int(unix.SIGSYS) && p.timing[call] && round < extraLearnRounds {
						t.Logf("enforced run %d killed at %s, a call of the runtime's that depends on timing (measured): one more learn run", round, call)
						continue
					}
					t.Fatalf("enforced under the learned whitelist: exit %d\n%s%s", r.code, r.stdout, r.stderr)
				}
				report := filepath.Join(dir, "complain.json")
				if r := run("--whitelist", out, "--baseline", "none", "--complain", "--report", report); r.code != 0 {
					t.Fatalf("complain: exit %d\n%s", r.code, r.stderr)
				}
				if vs := violations(t, report); len(vs) != 0 {
					if timingOnly(vs, p.timing) && round < extraLearnRounds {
						t.Logf("complain run %d: %v, calls of the runtime's that depend on timing (measured): one more learn run", round, vs)
						continue
					}
					t.Errorf("complain under the learned whitelist: %v", vs)
				}
				break
			}
			for _, r := range wl.Syscalls {
				if r.Category == "" || r.VerifiedByStrace == nil || !*r.VerifiedByStrace || !strings.Contains(r.Notes, "learned: seen") {
					t.Errorf("rule %s lacks category, verified_by_strace or notes: %+v", r.Name, r)
				}
			}
			enforced := func(reduced string) runResult { return run("--whitelist", reduced, "--baseline", "none") }
			var padded []string
			for _, c := range unneededCalls(t, wl, enforced) {
				if p.timing[c] {
					t.Logf("%s: not needed in %d runs, a call of the runtime's that depends on timing (measured)", c, removalRuns)
					continue
				}
				padded = append(padded, c)
			}
			if len(padded) > 0 {
				t.Errorf("padded: the program ran %d times without each of %v", removalRuns, padded)
			}
			if p.name == "busybox pipeline" {
				// The check itself: a call the program never makes is found.
				padded := *wl
				padded.Syscalls = append(append([]translate.Rule{}, wl.Syscalls...), translate.Rule{Name: "sync", Permission: translate.Allow})
				if unneeded := unneededCalls(t, &padded, enforced); len(unneeded) != 1 || unneeded[0] != "sync" {
					t.Errorf("a padded whitelist (sync added) was not caught: %v", unneeded)
				}
			}
		})
	}
}

// extraLearnRounds bounds the learn runs TestLearn adds for a runtime's
// timing-dependent calls.
const extraLearnRounds = 3

var killedAtRe = regexp.MustCompile(`agent killed by seccomp.* syscall=(\w+)`)

// killedAt is the call a run's agent was killed at by seccomp, from
// clawos-run's log; "" if none is named.
func killedAt(r runResult) string {
	if m := killedAtRe.FindStringSubmatch(r.stderr); m != nil {
		return m[1]
	}
	return ""
}

// timingOnly reports whether every violation of a complain report is a
// call in timing.
func timingOnly(vs []map[string]any, timing map[string]bool) bool {
	for _, v := range vs {
		if name, _ := v["syscall"].(string); !timing[name] {
			return false
		}
	}
	return true
}

// violations reads a complain report.
func violations(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Violations []map[string]any `json:"violations"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	return rep.Violations
}

// removalRuns is how often a program runs without one learned call before
// the call is declared unneeded: a runtime makes some calls only when its
// timing asks for them (a preemption signal, a futex wait).
const removalRuns = 3

// unneededCalls removes each call of wl in turn (execve stays: clawos-init
// needs it to start the agent, and every stage adds it) and runs the
// program enforced; it returns the calls without which the program still
// succeeded removalRuns times; a call is needed only when its removal
// gets the program killed by seccomp.
func unneededCalls(t *testing.T, wl *translate.Whitelist, run func(string) runResult) []string {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	var unneeded []string
	for i, rule := range wl.Syscalls {
		if rule.Name == "execve" {
			continue
		}
		reduced := *wl
		reduced.Syscalls = append(append([]translate.Rule{}, wl.Syscalls[:i]...), wl.Syscalls[i+1:]...)
		reduced.Signature = ""
		b, err := translate.Encode(&reduced)
		if err == nil {
			b, err = translate.Sign(b)
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, rule.Name+".json")
		os.WriteFile(p, b, 0o644)
		// Needed means killed by seccomp at the removed call (159); any
		// other failure (clawos-run's own 125, a crash) proves nothing and
		// fails the test instead of counting as "needed".
		broke := false
		for k := 0; k < removalRuns && !broke; k++ {
			r := run(p)
			switch r.code {
			case 0:
			case 128 + int(unix.SIGSYS):
				broke = true
			default:
				t.Fatalf("without %s the program ended with exit %d, neither success nor a seccomp kill:\n%s", rule.Name, r.code, r.stderr)
			}
		}
		if !broke {
			unneeded = append(unneeded, rule.Name)
		}
	}
	return unneeded
}

// TestLearnMerge learns two scenarios of the probe and merges them, then
// merges a learned run into a reviewed whitelist that denies a call the run
// made: the stricter rule stays, and clawos-run says so. Under both
// runtimes: the listener is taken the same way from either.
func TestLearnMerge(t *testing.T) {
	eachRuntime(t, testLearnMerge)
}

func testLearnMerge(t *testing.T, s sandboxTools) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	a, b := filepath.Join(dir, "a.json"), filepath.Join(dir, "b.json")
	if r := s.clawosRun(t, "--learn", a, "--", s.probe, "call", sysnr(t, "getpid")); r.code != 0 {
		t.Fatalf("learn a: %d %s", r.code, r.stderr)
	}
	if r := s.clawosRun(t, "--learn", b, "--merge", a, "--", s.probe, "call", sysnr(t, "getuid")); r.code != 0 {
		t.Fatalf("learn b: %d %s", r.code, r.stderr)
	}
	v, _ := schema.NewValidator()
	raw, _ := os.ReadFile(b)
	wl, rep := v.Validate(raw, translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	m := map[string]translate.Rule{}
	for _, r := range wl.Syscalls {
		m[r.Name] = r
	}
	if _, ok := m["getpid"]; !ok {
		t.Error("the first scenario's getpid is gone")
	}
	if _, ok := m["getuid"]; !ok {
		t.Error("the second scenario's getuid is missing")
	}
	if !strings.Contains(m["exit_group"].Notes, "in 2 run(s)") {
		t.Errorf("exit_group: %q", m["exit_group"].Notes)
	}
	// Both scenarios run enforced under the merged whitelist.
	for _, nr := range []string{sysnr(t, "getpid"), sysnr(t, "getuid")} {
		if r := s.clawosRun(t, "--whitelist", b, "--baseline", "none", "--", s.probe, "call", nr); r.code != 0 {
			t.Errorf("call %s under the merged whitelist: exit %d %s", nr, r.code, r.stderr)
		}
	}
	// A reviewed whitelist denies getuid; a run that calls it is merged in.
	for i := range wl.Syscalls {
		if wl.Syscalls[i].Name == "getuid" {
			wl.Syscalls[i].Permission = translate.Deny
		}
	}
	wl.Signature = ""
	rb, _ := translate.Encode(wl)
	rb, _ = translate.Sign(rb)
	reviewed, c := filepath.Join(dir, "reviewed.json"), filepath.Join(dir, "c.json")
	os.WriteFile(reviewed, rb, 0o644)
	r := s.clawosRun(t, "--learn", c, "--merge", reviewed, "--", s.probe, "call", sysnr(t, "getuid"))
	if r.code != 0 || !strings.Contains(r.stderr, "merge: kept the existing rule (DENY)") {
		t.Fatalf("learn c: exit %d\n%s", r.code, r.stderr)
	}
	if r := s.clawosRun(t, "--whitelist", c, "--baseline", "none", "--", s.probe, "call", sysnr(t, "getuid")); r.code != 1 {
		t.Errorf("getuid under the merged whitelist: exit %d, want 1 (EPERM: the DENY kept)", r.code)
	}
}

// TestLearnPorts learns a Python agent that talks to two ports (it
// listens on both and connects to each) under both runtimes: the learned
// whitelist restricts connect and bind to exactly those two ports, with
// the addresses seen in the notes, and runs enforced (its port rules in
// nftables and Landlock); a port outside them is then refused.
func TestLearnPorts(t *testing.T) {
	eachRuntime(t, func(t *testing.T, s sandboxTools) {
		py := built(t, "agents/twoports.py")
		dir := t.TempDir()
		os.Chmod(dir, 0o755)
		out := filepath.Join(dir, "learned.json")
		agent := func(ports ...string) []string {
			return append([]string{"--ro-bind", py + ":/opt/twoports.py", "--", "/usr/bin/python3", "-I", "/opt/twoports.py"}, ports...)
		}
		if r := s.clawosRun(t, append([]string{"--learn", out}, agent("5432", "6379")...)...); r.code != 0 || !strings.Contains(r.stdout, "ok 5432 6379") {
			t.Fatalf("learn: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		v, err := schema.NewValidator()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(out)
		wl, rep := v.Validate(raw, translate.Options{})
		if err := rep.Err(); err != nil {
			t.Fatalf("the learned whitelist does not validate: %v", err)
		}
		for _, r := range wl.Syscalls {
			if r.Name != "connect" && r.Name != "bind" {
				continue
			}
			if r.Conditions == nil || r.Conditions.PortRestriction == nil || !slices.Equal(r.Conditions.PortRestriction.AllowedPorts, []int{5432, 6379}) {
				t.Errorf("%s: %+v, want a port_restriction of 5432 and 6379", r.Name, r.Conditions)
			} else if !strings.Contains(r.Notes, "127.0.0.1:5432 (AF_INET)") || !strings.Contains(r.Notes, "127.0.0.1:6379 (AF_INET)") {
				t.Errorf("%s notes lack the addresses seen: %s", r.Name, r.Notes)
			}
		}
		if r := s.clawosRun(t, append([]string{"--whitelist", out}, agent("5432", "6379")...)...); r.code != 0 || !strings.Contains(r.stdout, "ok 5432 6379") {
			t.Fatalf("enforced under the learned whitelist: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// Another port is outside the learned rules: Python raises
		// (PermissionError or ConnectionRefusedError) and exits 1.
		if r := s.clawosRun(t, append([]string{"--whitelist", out}, agent("5432", "8080")...)...); r.code != 1 ||
			!(strings.Contains(r.stderr, "PermissionError") || strings.Contains(r.stderr, "ConnectionRefusedError")) {
			t.Errorf("a port outside the learned rules: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		// Complain mode runs it through, and names the destinations the
		// port rules would refuse.
		report := filepath.Join(dir, "complain.json")
		if r := s.clawosRun(t, append([]string{"--whitelist", out, "--complain", "--report", report}, agent("5432", "8080")...)...); r.code != 0 {
			t.Fatalf("complain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		named := map[string]bool{}
		for _, v := range violations(t, report) {
			if dests, ok := v["destinations"].([]any); ok {
				for _, d := range dests {
					named[fmt.Sprint(v["syscall"], " ", d)] = true
				}
			}
		}
		for _, want := range []string{"connect 127.0.0.1:8080 (AF_INET)", "bind 127.0.0.1:8080 (AF_INET)"} {
			if !named[want] {
				t.Errorf("the complain report does not name %q: %v", want, named)
			}
		}
	})
}

// TestComplain runs the tokio program under the reference whitelist, which
// kills it at setsockopt (it listens): in complain mode it runs to the
// end, and the report lists what the whitelist would have denied or killed.
func TestComplain(t *testing.T) {
	s := requireSandbox(t)
	tokio := buildTokio(t)
	const ref = "../examples/ironclaw.whitelist.json"
	if r := s.clawosRun(t, "--whitelist", ref, "--baseline", "start,tokio", "--", tokio); r.code != 159 {
		t.Fatalf("enforced: exit %d, want 159 (killed)\n%s", r.code, r.stderr)
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	r := s.clawosRun(t, "--whitelist", ref, "--baseline", "start,tokio", "--complain", "--report", report, "--", tokio)
	if r.code != 0 || !strings.Contains(r.stdout, "tokio-agent ok") {
		t.Fatalf("complain: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := map[string]string{}
	for _, v := range violations(t, report) {
		got[v["syscall"].(string)] = v["verdict"].(string)
		if v["count"].(float64) < 1 || (v["syscall"] != "port_restriction" && len(v["example_args"].([]any)) == 0) {
			t.Errorf("incomplete violation %v", v)
		}
	}
	// It connects to its own listener's ephemeral port, which the port
	// rule (5432 only) would refuse.
	for name, verdict := range map[string]string{"setsockopt": "KILL_PROCESS", "bind": "KILL_PROCESS", "listen": "KILL_PROCESS",
		"port_restriction": "REJECT (nftables)"} {
		if got[name] != verdict {
			t.Errorf("%s: %q, want %s (report %v)", name, got[name], verdict, got)
		}
	}
	if !strings.Contains(r.stderr, "SYSCALL") || !strings.Contains(r.stderr, "setsockopt") {
		t.Errorf("no table on stderr:\n%s", r.stderr)
	}
}

// TestLearnBaselines checks the measured start and tokio baselines (strace
// runs, test/baseline) against learn mode's recording of the programs they
// were measured on: every call learned is in the baseline.
func TestLearnBaselines(t *testing.T) {
	s := requireSandbox(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	goagent := filepath.Join(dir, "goagent")
	if out, err := exec.Command("go", "build", "-o", goagent, "./agents/goagent").CombinedOutput(); err != nil {
		t.Fatalf("go build goagent: %v\n%s", err, out)
	}
	start := measured(t, "start", "")
	tokio := measured(t, "tokio", "")
	for name, c := range map[string]struct {
		cmd      []string
		baseline map[string]bool
	}{
		"true":            {[]string{"/usr/bin/true"}, start},
		"goagent":         {[]string{goagent}, start},
		"tokio --minimal": {[]string{buildTokio(t), "--minimal"}, union(start, tokio)},
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".learned.json")
			if r := s.clawosRun(t, append([]string{"--learn", out, "--"}, c.cmd...)...); r.code != 0 {
				t.Fatalf("learn: exit %d %s", r.code, r.stderr)
			}
			raw, _ := os.ReadFile(out)
			var wl translate.Whitelist
			if err := json.Unmarshal(raw, &wl); err != nil {
				t.Fatal(err)
			}
			for _, r := range wl.Syscalls {
				if !c.baseline[r.Name] {
					t.Errorf("%s calls %s, which its baseline lacks", name, r.Name)
				}
			}
		})
	}
}

func union(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
