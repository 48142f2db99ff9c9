package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

const (
	example  = "../../examples/ironclaw.whitelist.json"
	upstream = "../../translate/testdata/upstream-example.json"
)

func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommands(t *testing.T) {
	exitEPerm := clawerr.EPerm.ExitStatus()
	exitEProto := clawerr.EProto.ExitStatus()
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout []string // substrings
		stderr []string
	}{
		{"no command", nil, "", exitUsage, []string{"commands:", "validate", "compile"}, nil},
		{"help", []string{"help"}, "", exitOK, []string{"usage:"}, nil},
		{"unknown command", []string{"frobnicate"}, "", exitUsage, nil, []string{`unknown command "frobnicate"`}},
		{"bad log format", []string{"--log-format", "xml", "validate", example}, "", exitUsage, nil, []string{"--log-format"}},
		{"validate example", []string{"validate", example}, "", exitOK, []string{"valid for x86_64 (0 errors, 0 warnings)"}, nil},
		{"validate upstream", []string{"validate", upstream}, "", exitEPerm,
			[]string{`syscalls[14].name: "recv" is not a Linux syscall`, "recvfrom", "placeholder", "INVALID"}, nil},
		{"validate upstream for aarch64", []string{"validate", "--arch", "aarch64", upstream}, "", exitEPerm,
			[]string{`"epoll_wait" is not a syscall on aarch64`, "epoll_pwait"}, nil},
		{"validate stdin malformed", []string{"validate", "-"}, `{"schema_version": `, exitEProto, []string{"malformed JSON at line 1"}, nil},
		{"validate missing file", []string{"validate", "/nonexistent/wl.json"}, "", clawerr.ENoEnt.ExitStatus(), nil, []string{"no such file"}},
		{"validate bad arch", []string{"validate", "--arch", "mips", example}, "", exitUsage, nil, []string{"unsupported architecture"}},
		{"validate two args", []string{"validate", example, example}, "", exitUsage, nil, []string{"want one argument"}},
		{"translate", []string{"translate", example}, "", exitOK, []string{`"defaultAction": "SCMP_ACT_KILL_PROCESS"`, `"flags": []`}, nil},
		{"translate refuses upstream", []string{"translate", upstream}, "", exitEPerm, nil, []string{"invalid whitelist", "recv"}},
		{"diff identical", []string{"diff", example, example}, "", exitOK, []string{"no difference"}, nil},
		{"diff refuses an invalid whitelist", []string{"diff", example, upstream}, "", exitEPerm, nil, []string{"recv"}},
		{"diff one argument", []string{"diff", example}, "", exitUsage, nil, []string{"want OLD NEW"}},
		{"translate kubelet", []string{"translate", "--format", "kubelet", example}, "", exitOK,
			[]string{`"defaultAction": "SCMP_ACT_KILL_PROCESS"`, `"setuid"`},
			[]string{"one stage, no clawos-init", "setgroups", "port restrictions (connect [5432], bind []) are NOT enforced", "no signature check"}},
		{"translate kubelet no_new_privs", []string{"translate", "--format", "kubelet", "--no-new-privs", example}, "", exitOK,
			[]string{`"defaultAction"`}, []string{"unconditionally allowed: epoll_pwait, fstatfs, getdents64"}},
		{"translate kubelet with --spec", []string{"translate", "--format", "kubelet", "--spec", example}, "", exitUsage, nil, []string{"not with --spec"}},
		{"translate bad format", []string{"translate", "--format", "docker", example}, "", exitUsage, nil, []string{`--format "docker"`}},
		{"translate spec", []string{"translate", "--spec", "--baseline", "start", example}, "", exitOK,
			[]string{`"ociVersion"`, `"noNewPrivileges": true`, `"io.clawos.network-policy"`, `"execve"`, `"flags": []`}, nil},
		{"explain table", []string{"explain", example}, "", exitOK,
			[]string{"clone3", "deny ENOSYS", "(any other)", "kill process", "connect ports [5432]"}, nil},
		{"explain call allowed", []string{"explain", example, "socket", "--args", "2,1"}, "", exitOK, []string{"ALLOW"}, nil},
		{"explain call refused", []string{"explain", example, "socket", "--args", "1,1"}, "", exitOK, []string{"ERRNO(1)"}, nil},
		{"explain call unlisted", []string{"explain", example, "ptrace"}, "", exitOK, []string{"KILL_PROCESS", "not listed"}, nil},
		{"explain unknown call", []string{"explain", example, "recv"}, "", clawerr.ENoEnt.ExitStatus(), nil, []string{`"recv" is not a syscall`}},
		{"explain bad args", []string{"explain", example, "read", "--args", "1,x"}, "", exitUsage, nil, []string{"--args value 1"}},
		{"compile", []string{"compile", "--baseline", "start", example}, "", exitOK, []string{"BPF instructions for x86_64 (kernel limit 4096)"}, nil},
		{"compile listing", []string{"compile", "--listing", example}, "", exitOK, []string{"; arch", "KILL_PROCESS"}, nil},
		{"tokio baseline refused on aarch64", []string{"translate", "--arch", "aarch64", "--baseline", "tokio", example}, "",
			clawerr.ENoEnt.ExitStatus(), nil, []string{"has not been measured on aarch64"}},
		{"explain container stage", []string{"explain", "--baseline", "start", "--container-stage", "runc", example}, "", exitOK,
			[]string{"getdents64", "runtime:runc", "container stage only; the agent stage kills it", "clawos-init"}, nil},
		{"container stage of an unmeasured runtime", []string{"explain", "--container-stage", "crun", example}, "", clawerr.ENoEnt.ExitStatus(), nil, []string{"runtime crun"}},
		{"apparmor generic", []string{"apparmor", example}, "", exitOK, []string{"profile clawos-agent flags=(attach_disconnected,mediate_deleted)", "network inet stream,", "ports [5432]"}, nil},
		{"apparmor preset", []string{"apparmor", "--preset", "clawos-wasm-daemon", example}, "", exitOK, []string{"profile clawos-wasm-daemon", "deny network,", "deny capability,", "deny pivot_root,"}, nil},
		{"apparmor unknown preset", []string{"apparmor", "--preset", "nope", example}, "", clawerr.ENoEnt.ExitStatus(), nil, []string{"unknown AppArmor preset"}},
		{"json error payload", []string{"translate", "--json", upstream}, "", exitEPerm, nil, []string{`"error_code":4`, `"component":"clawos-policy"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(out, s) {
					t.Errorf("stdout lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
		})
	}
}

// TestHelpEverywhere checks that every command in the table answers --help.
func TestHelpEverywhere(t *testing.T) {
	for _, c := range commands {
		code, out, _ := runCLI(t, "", c.name, "--help")
		if code != exitOK || !strings.Contains(out, "usage: clawos-policy "+c.name) || !strings.Contains(out, "-json") {
			t.Errorf("%s --help: exit %d\n%s", c.name, code, out)
		}
	}
}

func TestSignInPlace(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(upstream)
	if err != nil {
		t.Fatal(err)
	}
	// The upstream example cannot be signed: it has errors besides the signature.
	path := filepath.Join(dir, "wl.json")
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "", "sign", "--in-place", path); code != clawerr.ENoEnt.ExitStatus() || !strings.Contains(errOut, "refusing to sign") {
		t.Fatalf("signing the upstream example: exit %d %s", code, errOut)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, src) {
		t.Fatal("a refused sign modified the file")
	}
	// Fix recv/send and sign: the result validates, even as production.
	fixed := bytes.ReplaceAll(src, []byte(`"name": "recv"`), []byte(`"name": "recvfrom"`))
	fixed = bytes.ReplaceAll(fixed, []byte(`"name": "send"`), []byte(`"name": "sendto"`))
	if err := os.WriteFile(path, fixed, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "", "sign", "--in-place", path); code != exitOK {
		t.Fatalf("sign: exit %d %s", code, errOut)
	}
	if code, out, _ := runCLI(t, "", "validate", path); code != exitOK {
		t.Fatalf("signed file does not validate: %s", out)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("sign left temporary files: %v", entries)
	}
	// Signing to stdout from stdin.
	code, out, _ := runCLI(t, string(fixed), "sign", "-")
	var wl translate.Whitelist
	if code != exitOK || json.Unmarshal([]byte(out), &wl) != nil || len(wl.Signature) != 64 {
		t.Errorf("sign - : exit %d, %q", code, wl.Signature)
	}
}

func TestCompileOutput(t *testing.T) {
	out := filepath.Join(t.TempDir(), "filter.bpf")
	code, stdout, errOut := runCLI(t, "", "compile", "--json", "-o", out, example)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Instructions int `json:"instructions"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := seccomp.ParseProgram(raw)
	if err != nil || prog.Len() != res.Instructions {
		t.Errorf("wrote %d bytes for %d instructions: %v", len(raw), res.Instructions, err)
	}
}

func TestTranslateDeterministic(t *testing.T) {
	_, a, _ := runCLI(t, "", "translate", "--baseline", "start,tokio", example)
	_, b, _ := runCLI(t, "", "translate", "--baseline", "tokio,start", example)
	if a == "" || a != b {
		t.Error("translate output differs between runs")
	}
}

func TestLogFormatJSON(t *testing.T) {
	_, _, errOut := runCLI(t, "", "--log-format", "json", "translate", "../../translate/testdata/validate/dangerous.json")
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if len(lines) < 5 {
		t.Fatalf("want a warning per dangerous syscall, got %q", errOut)
	}
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["level"] != "warning" || m["check"] == nil {
			t.Errorf("log line is not a JSON warning: %q", line)
		}
	}
}

// TestDiffCommand diffs the reference whitelist against a re-signed copy
// that allows clone3 (denied in the reference), drops getpid and adds
// getuid.
func TestDiffCommand(t *testing.T) {
	raw, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var wl translate.Whitelist
	if err := json.Unmarshal(raw, &wl); err != nil {
		t.Fatal(err)
	}
	var rules []translate.Rule
	for _, r := range wl.Syscalls {
		switch r.Name {
		case "getpid":
			continue
		case "clone3":
			r.Permission, r.DenyErrno = translate.Allow, ""
		}
		rules = append(rules, r)
	}
	wl.Syscalls = append(rules, translate.Rule{Name: "getuid", Permission: translate.Allow, Category: "process"})
	b, err := translate.Encode(&wl)
	if err != nil {
		t.Fatal(err)
	}
	if b, err = translate.Sign(b); err != nil {
		t.Fatal(err)
	}
	changed := filepath.Join(t.TempDir(), "changed.json")
	os.WriteFile(changed, b, 0o644)
	code, out, errOut := runCLI(t, "", "diff", example, changed)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"! ~ clone3", "-> ALLOW", "  - getpid", "! + getuid", "3 changes, 2 of them allow more"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "", "--log-format", "json", "diff", "--json", example, changed)
	var changes []translate.Change
	if code != exitOK || json.Unmarshal([]byte(out), &changes) != nil || len(changes) != 3 {
		t.Errorf("--json: exit %d, %s", code, out)
	}
}
