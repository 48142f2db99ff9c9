package translate_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	stderrors "errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/golden"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

func validator(t testing.TB) *translate.Validator {
	t.Helper()
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func report(r translate.Report) []byte {
	var b strings.Builder
	for _, d := range r.Diagnostics {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	if len(r.Diagnostics) == 0 {
		b.WriteString("no findings\n")
	}
	return []byte(b.String())
}

// TestValidateGolden runs every input of testdata/validate and the two
// reference whitelists, and compares the full report with its golden file.
func TestValidateGolden(t *testing.T) {
	v := validator(t)
	inputs, err := filepath.Glob("testdata/validate/*.json")
	if err != nil || len(inputs) < 25 {
		t.Fatalf("validate corpus: %v, %d files", err, len(inputs))
	}
	type run struct {
		input string
		opts  translate.Options
		out   string
	}
	var runs []run
	for _, in := range inputs {
		runs = append(runs, run{in, translate.Options{Arch: translate.ArchX8664}, strings.TrimSuffix(in, ".json") + ".golden"})
	}
	runs = append(runs,
		run{"testdata/upstream-example.json", translate.Options{Arch: translate.ArchX8664}, "testdata/validate/upstream-example.x86_64.golden"},
		run{"testdata/upstream-example.json", translate.Options{Arch: translate.ArchAArch64}, "testdata/validate/upstream-example.aarch64.golden"},
		run{"../examples/ironclaw.whitelist.json", translate.Options{Arch: translate.ArchX8664}, "testdata/validate/ironclaw.x86_64.golden"},
		run{"../examples/ironclaw.whitelist.json", translate.Options{Arch: translate.ArchAArch64}, "testdata/validate/ironclaw.aarch64.golden"},
		run{"testdata/validate/placeholder-signature-testing.json", translate.Options{Arch: translate.ArchX8664, RequireSignature: true}, "testdata/validate/placeholder-signature-required.golden"},
	)
	for _, r := range runs {
		t.Run(filepath.Base(r.out), func(t *testing.T) {
			_, rep := v.Validate(readFile(t, r.input), r.opts)
			golden.Check(t, strings.TrimPrefix(r.out, "testdata/"), report(rep))
			for _, d := range rep.Diagnostics {
				if !d.Code.Valid() || d.Code == clawerr.Success || d.Message == "" || d.Check == "" {
					t.Errorf("incomplete diagnostic %+v", d)
				}
			}
		})
	}
}

// TestValidateExpectations pins the verdicts that matter most, so that a
// careless -update cannot turn a refusal into an acceptance.
func TestValidateExpectations(t *testing.T) {
	v := validator(t)
	tests := []struct {
		file     string
		opts     translate.Options
		valid    bool
		wantPath string // a path that must carry an error
		wantCode clawerr.Code
	}{
		{"../examples/ironclaw.whitelist.json", translate.Options{}, true, "", 0},
		{"testdata/upstream-example.json", translate.Options{}, false, "syscalls[14].name", clawerr.ENoEnt},
		{"testdata/upstream-example.json", translate.Options{}, false, "signature", clawerr.EPerm},
		{"testdata/validate/duplicate-name.json", translate.Options{}, false, "syscalls[2].name", clawerr.EProto},
		{"testdata/validate/conditional-description-only.json", translate.Options{}, false, "syscalls[0].conditions", clawerr.EProto},
		{"testdata/validate/conditional-missing-conditions.json", translate.Options{}, false, "syscalls[0]", clawerr.EProto},
		{"testdata/validate/allow-with-conditions.json", translate.Options{}, false, "syscalls[0].conditions", clawerr.EProto},
		{"testdata/validate/arg-index-out-of-range.json", translate.Options{}, false, "syscalls[0].conditions.argument_filter.arg_index", clawerr.EProto},
		{"testdata/validate/mask-without-masked-eq.json", translate.Options{}, false, "syscalls[0].conditions.argument_filter.mask", clawerr.EProto},
		{"testdata/validate/masked-eq-without-mask.json", translate.Options{}, false, "syscalls[0].conditions.argument_filter.mask", clawerr.EProto},
		{"testdata/validate/value-outside-mask.json", translate.Options{}, false, "syscalls[0].conditions.argument_filter.value", clawerr.EProto},
		{"testdata/validate/value-too-large.json", translate.Options{}, false, "syscalls[0].conditions.argument_filter.value", clawerr.EProto},
		{"testdata/validate/port-on-read.json", translate.Options{}, false, "syscalls[0].conditions.port_restriction", clawerr.EProto},
		{"testdata/validate/empty-ports.json", translate.Options{}, false, "syscalls[0].conditions.port_restriction.allowed_ports", clawerr.EProto},
		{"testdata/validate/socket-port-and-family-filter.json", translate.Options{}, false, "syscalls[0].conditions.argument_filter.arg_index", clawerr.EProto},
		{"testdata/validate/unknown-names.json", translate.Options{}, false, "syscalls[2].name", clawerr.ENoEnt},
		{"testdata/validate/case-variant-member.json", translate.Options{}, false, "syscalls[0].Name", clawerr.EProto},
		{"testdata/validate/duplicate-member.json", translate.Options{}, false, "syscalls[0].permission", clawerr.EProto},
		{"testdata/validate/deny-errno.json", translate.Options{}, false, "syscalls[1].x-clawos-deny-errno", clawerr.EProto},
		{"testdata/validate/schema-version-2.json", translate.Options{}, false, "schema_version", clawerr.EProto},
		{"testdata/validate/truncated.json", translate.Options{}, false, "", clawerr.EProto},
		{"testdata/validate/not-an-object.json", translate.Options{}, false, "", clawerr.EProto},
		{"testdata/validate/unsigned-production.json", translate.Options{}, false, "signature", clawerr.EPerm},
		{"testdata/validate/signature-mismatch.json", translate.Options{}, false, "signature", clawerr.EPerm},
		{"testdata/validate/placeholder-signature-testing.json", translate.Options{}, true, "", 0},
		{"testdata/validate/placeholder-signature-testing.json", translate.Options{RequireSignature: true}, false, "signature", clawerr.EPerm},
		{"testdata/validate/dangerous.json", translate.Options{}, true, "", 0},
		{"testdata/validate/arg-32bit.json", translate.Options{}, false, "syscalls[0].conditions.argument_filter.operator", clawerr.EPerm},
		{"testdata/validate/arg-32bit.json", translate.Options{}, false, "syscalls[1].conditions.argument_filter.operator", clawerr.EPerm},
		{"testdata/validate/open-read-only.json", translate.Options{}, true, "", 0},
		{"testdata/validate/open-read-only-mask.json", translate.Options{}, true, "", 0},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.file)+"/"+tt.wantPath, func(t *testing.T) {
			_, rep := v.Validate(readFile(t, tt.file), tt.opts)
			err := rep.Err()
			if tt.valid {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("want invalid, got valid")
			}
			var ie *translate.InvalidError
			if !stderrors.As(err, &ie) {
				t.Fatalf("error is %T, want *InvalidError", err)
			}
			for _, d := range rep.Errors() {
				if d.Path == tt.wantPath && d.Code == tt.wantCode {
					return
				}
			}
			t.Errorf("no %s error at %q in:\n%s", tt.wantCode, tt.wantPath, report(rep))
		})
	}
}

func TestWarnings(t *testing.T) {
	v := validator(t)
	tests := []struct {
		file, check, path string
	}{
		{"testdata/validate/dangerous.json", "dangerous-syscall", "syscalls[0].permission"},
		{"testdata/validate/dangerous.json", "dangerous-syscall", "syscalls[3].permission"},
		{"testdata/validate/open-read-only.json", "open-read-only", "syscalls[0].conditions.argument_filter.mask"},
		{"testdata/validate/open-read-only.json", "open-read-only", "syscalls[1].conditions.argument_filter.mask"},
		{"testdata/validate/tokio-missing.json", "tokio", "syscalls"},
		{"testdata/validate/unknown-member-in-rule.json", "unknown-field", "syscalls[0].condition"},
		{"testdata/validate/placeholder-signature-testing.json", "signature", "signature"},
		{"testdata/upstream-example.json", "dangerous-syscall", "syscalls[30].permission"},
	}
	for _, tt := range tests {
		_, rep := v.Validate(readFile(t, tt.file), translate.Options{Arch: translate.ArchX8664})
		found := false
		for _, d := range rep.Warnings() {
			found = found || (d.Check == tt.check && d.Path == tt.path)
		}
		if !found {
			t.Errorf("%s: no %s warning at %s in:\n%s", tt.file, tt.check, tt.path, report(rep))
		}
	}
	// The mask that does mean read-only is not reported.
	_, rep := v.Validate(readFile(t, "testdata/validate/open-read-only-mask.json"), translate.Options{Arch: translate.ArchX8664})
	for _, d := range rep.Diagnostics {
		if d.Check == "open-read-only" {
			t.Errorf("the read-only mask %#x is reported: %v", translate.ReadOnlyOpenMask, d)
		}
	}
	// clone's flags are 64-bit: ne on it is not a 32-bit bypass.
	_, rep = v.Validate(readFile(t, "testdata/validate/arg-32bit.json"), translate.Options{Arch: translate.ArchX8664})
	for _, d := range rep.Diagnostics {
		if d.Path == "syscalls[2].conditions.argument_filter.operator" {
			t.Errorf("clone flags flagged as 32-bit: %v", d)
		}
	}
}

// TestRoundTrip decodes and re-encodes the reference whitelists and checks
// that the compacted bytes are unchanged: same members in the same order,
// same values, unknown members (metadata.notes, the x-clawos-deny-errno
// extension) included. Only insignificant whitespace may differ.
func TestRoundTrip(t *testing.T) {
	for _, f := range []string{"testdata/upstream-example.json", "../examples/ironclaw.whitelist.json"} {
		raw := readFile(t, f)
		var wl translate.Whitelist
		if err := json.Unmarshal(raw, &wl); err != nil {
			t.Fatal(err)
		}
		got, err := translate.Encode(&wl)
		if err != nil {
			t.Fatal(err)
		}
		var a, b bytes.Buffer
		if err := json.Compact(&a, raw); err != nil {
			t.Fatal(err)
		}
		if err := json.Compact(&b, got); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Errorf("%s does not round-trip:\n%s", f, got)
		}
		if wl.Metadata == nil || wl.Metadata.Extra["notes"] == nil {
			t.Errorf("%s: metadata.notes was not kept", f)
		}
	}
}

func TestEmbeddedSchemaIsUpstream(t *testing.T) {
	src := string(readFile(t, "p12/SOURCE.md"))
	m := regexp.MustCompile("SHA-256 `([0-9a-f]{64})`").FindStringSubmatch(src)
	if m == nil {
		t.Fatal("p12/SOURCE.md records no SHA-256")
	}
	sum := sha256.Sum256(translate.SchemaJSON)
	if hex.EncodeToString(sum[:]) != m[1] {
		t.Error("the embedded schema differs from the recorded upstream copy")
	}
}

func TestSignature(t *testing.T) {
	raw := readFile(t, "../examples/ironclaw.whitelist.json")
	var wl translate.Whitelist
	if err := json.Unmarshal(raw, &wl); err != nil {
		t.Fatal(err)
	}
	if st, err := translate.VerifySignature(raw, wl.Signature); err != nil || st != translate.SignatureValid {
		t.Fatalf("shipped example: %v %v", st, err)
	}
	// Formatting and member order do not change the signature.
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	compact, _ := json.Marshal(generic) // sorted keys, no whitespace
	if st, _ := translate.VerifySignature(compact, wl.Signature); st != translate.SignatureValid {
		t.Errorf("re-formatted whitelist: %v", st)
	}
	// Any change of content does.
	for _, edit := range []struct{ from, to string }{
		{`"name": "getpid"`, `"name": "getppid"`},
		{`"permission": "DENY"`, `"permission": "ALLOW"`},
		{`5432`, `5433`},
		{`"notes": "Get process ID"`, `"notes": "Get process ID "`},
	} {
		changed := bytes.Replace(raw, []byte(edit.from), []byte(edit.to), 1)
		if bytes.Equal(changed, raw) {
			t.Fatalf("edit %q not applied", edit.from)
		}
		if st, _ := translate.VerifySignature(changed, wl.Signature); st != translate.SignatureMismatch {
			t.Errorf("edit %q: %v, want mismatch", edit.from, st)
		}
	}
	// Sign is idempotent and verifies.
	signed, err := translate.Sign(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace(signed), bytes.TrimSpace(raw)) {
		t.Error("re-signing the signed example changed it")
	}
}

// TestCanonical checks the canonical form against RFC 8785 rules and the
// refusal of numbers a double cannot hold.
func TestCanonical(t *testing.T) {
	tests := []struct {
		in, want, errPath string
	}{
		{`{"b": 1, "a": [true, null, "x"], "signature": "zz"}`, `{"a":[true,null,"x"],"b":1}`, ""},
		{`{"z": 1.0, "y": 1e3, "\u00e9": "\u00e9"}`, `{"y":1000,"z":1,"é":"é"}`, ""},
		{`{"v": 9007199254740992}`, `{"v":9007199254740992}`, ""},
		{`{"s": [{"v": 9007199254740993}]}`, "", "s[0].v"},
		{`{"v": 18446744073709551615}`, "", "v"},
		{`{"v": 0.1000000000000000000001}`, "", "v"},
	}
	for _, tt := range tests {
		got, err := translate.Canonical([]byte(tt.in))
		if tt.errPath != "" {
			var ce *clawerr.Error
			if !stderrors.As(err, &ce) || ce.Path != tt.errPath || ce.Code != clawerr.EProto {
				t.Errorf("Canonical(%s): err %v, want EPROTO at %s", tt.in, err, tt.errPath)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("Canonical(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestTranslateGolden pins the OCI output and checks it is byte-identical
// across runs.
func TestTranslateGolden(t *testing.T) {
	v := validator(t)
	wl, rep := v.Validate(readFile(t, "../examples/ironclaw.whitelist.json"), translate.Options{})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		arch      translate.Arch
		baselines []string
		name      string
	}{
		{translate.ArchX8664, nil, "ironclaw.x86_64.seccomp.json"},
		{translate.ArchX8664, []string{"start", "tokio"}, "ironclaw.x86_64.start-tokio.seccomp.json"},
		{translate.ArchAArch64, []string{"start"}, "ironclaw.aarch64.start.seccomp.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var prev []byte
			for i := 0; i < 3; i++ {
				p, err := translate.Translate(wl, translate.Options{Arch: tc.arch, Baselines: tc.baselines})
				if err != nil {
					t.Fatal(err)
				}
				b, err := p.SeccompJSON()
				if err != nil {
					t.Fatal(err)
				}
				if prev != nil && !bytes.Equal(prev, b) {
					t.Fatal("translation is not deterministic")
				}
				prev = b
			}
			golden.Check(t, "golden/"+tc.name, prev)
			var sec map[string]any
			if err := json.Unmarshal(prev, &sec); err != nil {
				t.Fatal(err)
			}
			if sec["defaultAction"] != "SCMP_ACT_KILL_PROCESS" {
				t.Errorf("defaultAction %v", sec["defaultAction"])
			}
			if f, ok := sec["flags"].([]any); !ok || len(f) != 0 {
				t.Errorf(`want "flags": [] (so runc does not add SPEC_ALLOW), got %v`, sec["flags"])
			}
			if a := sec["architectures"].([]any); len(a) != 1 || a[0] != string(tc.arch.OCI()) {
				t.Errorf("architectures %v, want only %s", a, tc.arch.OCI())
			}
		})
	}
}

// TestTranslateSemantics checks the translation rules one by one.
func TestTranslateSemantics(t *testing.T) {
	v := validator(t)
	wl, rep := v.Validate(readFile(t, "../examples/ironclaw.whitelist.json"), translate.Options{})
	if rep.Err() != nil {
		t.Fatal(rep.Err())
	}
	p, err := translate.Translate(wl, translate.Options{Arch: translate.ArchX8664})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Network; fmt.Sprint(got.ConnectPorts) != "[5432]" || len(got.BindPorts) != 0 || len(got.Sources) != 2 {
		t.Errorf("network policy %+v", got)
	}
	rules := map[string][]specs.LinuxSyscall{}
	for _, c := range p.Seccomp.Syscalls {
		for _, n := range c.Names {
			rules[n] = append(rules[n], c)
		}
	}
	if r := rules["clone3"]; len(r) != 1 || r[0].Action != specs.ActErrno || *r[0].ErrnoRet != 38 {
		t.Errorf("clone3: %+v", r)
	}
	if r := rules["connect"]; len(r) != 1 || r[0].Action != specs.ActAllow || len(r[0].Args) != 0 {
		t.Errorf("connect must be allowed by seccomp (ports are the network policy's): %+v", r)
	}
	// socket: 8 ALLOW combinations of family, type and protocol (0 or the
	// type's own), then EPERM.
	sock := rules["socket"]
	if len(sock) != 9 || sock[8].Action != specs.ActErrno || *sock[8].ErrnoRet != 1 {
		t.Fatalf("socket rules: %+v", sock)
	}
	for _, r := range sock[:8] {
		if r.Action != specs.ActAllow || len(r.Args) != 3 || r.Args[1].Op != specs.OpMaskedEqual || r.Args[1].Value != 0xf ||
			r.Args[2].Index != 2 || r.Args[2].Op != specs.OpEqualTo || (r.Args[2].Value != 0 && r.Args[2].Value != 6 && r.Args[2].Value != 17) {
			t.Errorf("socket allow rule %+v", r)
		}
	}
	for _, name := range []string{"recv", "send", "execve"} {
		if _, ok := rules[name]; ok {
			t.Errorf("%s has a rule", name)
		}
	}
	// With the start baseline, execve is allowed and says where it comes from.
	p, err = translate.Translate(wl, translate.Options{Arch: translate.ArchX8664, Baselines: []string{"start"}})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, o := range p.Origins {
		if o.Syscall == "execve" {
			found = o.Source == "baseline:start" && strings.Contains(o.Reason, "measured in")
		}
	}
	if !found {
		t.Error("execve is not attributed to the start baseline")
	}
}

// TestOperatorsComplete walks every operator: it has an OCI operator, and
// (except masked_eq) a complement that selects exactly the other values.
func TestOperatorsComplete(t *testing.T) {
	ops := translate.KnownOperators()
	if strings.Join(ops, ",") != "eq,ge,gt,le,lt,masked_eq,ne" {
		t.Fatalf("operators %v", ops)
	}
	// Exercised end to end in test/seccomp_kernel_test.go; here the
	// translation of each operator must be accepted by the schema enum.
	var schema map[string]any
	if err := json.Unmarshal(translate.SchemaJSON, &schema); err != nil {
		t.Fatal(err)
	}
	enum := schema["properties"].(map[string]any)["syscalls"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)["conditions"].(map[string]any)["properties"].(map[string]any)["argument_filter"].(map[string]any)["properties"].(map[string]any)["operator"].(map[string]any)["enum"].([]any)
	var want []string
	for _, e := range enum {
		want = append(want, e.(string))
	}
	sort.Strings(want)
	if strings.Join(want, ",") != strings.Join(ops, ",") {
		t.Errorf("schema operators %v, translator operators %v", want, ops)
	}
}

func TestBaselines(t *testing.T) {
	for _, arch := range translate.KnownArches() {
		for _, name := range translate.KnownBaselines() {
			calls, err := translate.Baseline(arch, name)
			if arch == translate.ArchAArch64 && name == translate.BaselineTokio {
				if !stderrors.Is(err, clawerr.ErrNotFound) {
					t.Errorf("aarch64 tokio baseline: %v, want a not-measured error", err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s %s: %v", arch, name, err)
			}
			if len(calls) < 10 {
				t.Errorf("%s %s: only %d calls", arch, name, len(calls))
			}
			for i, c := range calls {
				if _, ok := arch.SyscallNumber(c.Name); !ok {
					t.Errorf("%s %s: %q is not a syscall", arch, name, c.Name)
				}
				if len(c.MeasuredIn) == 0 {
					t.Errorf("%s %s: %s has no provenance", arch, name, c.Name)
				}
				if i > 0 && calls[i-1].Name >= c.Name {
					t.Errorf("%s %s: not sorted at %s", arch, name, c.Name)
				}
			}
		}
	}
	if _, err := translate.ParseBaselines("start,bogus"); err == nil {
		t.Error("ParseBaselines accepted bogus")
	}
	if b, err := translate.ParseBaselines("tokio,start,tokio"); err != nil || strings.Join(b, ",") != "start,tokio" {
		t.Errorf("ParseBaselines: %v %v", b, err)
	}
}

func TestArgValue(t *testing.T) {
	tests := []struct {
		lit  string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"4294967296", 1 << 32, true}, {"18446744073709551615", ^uint64(0), true},
		{"-1", ^uint64(0), true}, {"-9223372036854775808", 1 << 63, true},
		{"18446744073709551616", 0, false}, {"-9223372036854775809", 0, false}, {"1.5", 0, false},
	}
	for _, tt := range tests {
		var a translate.ArgValue
		if err := json.Unmarshal([]byte(tt.lit), &a); err != nil {
			t.Fatal(err)
		}
		got, err := a.Uint64()
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%s: %#x, %v", tt.lit, got, err)
		}
	}
}

func TestReadFileLimit(t *testing.T) {
	big := bytes.Repeat([]byte(" "), translate.MaxWhitelistSize+1)
	_, err := translate.ReadFile("-", bytes.NewReader(big))
	if !stderrors.Is(err, clawerr.ErrProto) {
		t.Errorf("oversized input: %v", err)
	}
	_, err = translate.ReadFile(filepath.Join(t.TempDir(), "missing.json"), nil)
	if !stderrors.Is(err, clawerr.ErrNotFound) {
		t.Errorf("missing file: %v", err)
	}
	// Just under the limit: a large but valid document is handled.
	v := validator(t)
	pad := strings.Repeat("x", 6<<20)
	doc := fmt.Sprintf(`{"schema_version":"1.0.0","whitelist_id":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","created_at":"2026-11-28T00:00:00Z","created_by":"Security Agent","syscalls":[{"name":"read","permission":"ALLOW","notes":%q}]}`, pad)
	if _, rep := v.Validate([]byte(doc), translate.Options{}); rep.Err() != nil {
		t.Errorf("6 MiB whitelist: %v", rep.Err())
	}
}

func TestSpec(t *testing.T) {
	v := validator(t)
	wl, _ := v.Validate(readFile(t, "../examples/ironclaw.whitelist.json"), translate.Options{})
	p, err := translate.Translate(wl, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{Version: specs.Version}
	if err := translate.ApplyToSpec(s, wl, p); err != nil {
		t.Fatal(err)
	}
	if !s.Process.NoNewPrivileges || s.Annotations[translate.AnnotationWhitelistID] != wl.WhitelistID ||
		!strings.HasPrefix(s.Annotations[translate.AnnotationProfileDigest], "sha256:") ||
		!strings.Contains(s.Annotations[translate.AnnotationNetworkPolicy], "5432") {
		t.Errorf("spec not filled: %+v %+v", s.Process, s.Annotations)
	}
	b, err := translate.MarshalSpec(s)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"flags": []`)) {
		t.Error(`whole config lacks "flags": []`)
	}
}
