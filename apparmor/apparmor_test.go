package apparmor_test

import (
	"encoding/json"
	stderrors "errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/apparmor"
	"github.com/clawos/clawos-security/internal/golden"
	"github.com/clawos/clawos-security/translate"
)

// parser returns apparmor_parser. Where the sandbox tests run (make test),
// a missing parser is a failure; elsewhere the compile tests are skipped.
func parser(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("apparmor_parser")
	if err != nil {
		if os.Getenv("CLAWOS_INTEGRATION") != "" {
			t.Fatal("apparmor_parser is missing: .ci/setup installs the apparmor package")
		}
		t.Skip("apparmor_parser is not installed (Debian package apparmor)")
	}
	return p
}

func agentProfile(t *testing.T, rules ...translate.Rule) *translate.Profile {
	t.Helper()
	p, err := translate.Translate(&translate.Whitelist{Syscalls: rules}, translate.Options{Arch: translate.ArchX8664})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func referenceAgent(t *testing.T) *translate.Profile {
	t.Helper()
	raw, err := os.ReadFile("../examples/ironclaw.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	var wl translate.Whitelist
	if err := json.Unmarshal(raw, &wl); err != nil {
		t.Fatal(err)
	}
	p, err := translate.Translate(&wl, translate.Options{Arch: translate.ArchX8664})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	viewMounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/usr", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}},
		{Destination: "/etc/passwd", Type: "bind", Source: "/etc/passwd", Options: []string{"rbind", "ro"}},
	}
	bindMounts = append(append([]specs.Mount{}, viewMounts...),
		specs.Mount{Destination: "/data", Type: "bind", Source: "/tmp", Options: []string{"rbind"}},
		specs.Mount{Destination: "/models", Type: "bind", Source: "/usr", Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/weird,path", Type: "bind", Source: "/tmp"}, // not grantable: no rule
	)
)

func TestPresetsGolden(t *testing.T) {
	for _, preset := range append(apparmor.KnownPresets(), "") {
		name := preset
		if name == "" {
			name = "generic"
		}
		t.Run(name, func(t *testing.T) {
			p, err := apparmor.Generate(apparmor.Input{Preset: preset, Agent: referenceAgent(t), Mounts: viewMounts, Exec: []string{"/usr/bin/ironclaw"}})
			if err != nil {
				t.Fatal(err)
			}
			text, err := p.Render()
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, name+".apparmor", []byte(text))
			again, _ := p.Render()
			if again != text {
				t.Error("rendering is not deterministic")
			}
		})
	}
}

// TestCompileMatrix compiles every preset and the generic profile for
// several whitelists and mount sets with the real apparmor_parser.
func TestCompileMatrix(t *testing.T) {
	ap := parser(t)
	agents := map[string]*translate.Profile{
		"reference":       referenceAgent(t),
		"no-network":      agentProfile(t, translate.Rule{Name: "read", Permission: translate.Allow}),
		"socket-all":      agentProfile(t, translate.Rule{Name: "socket", Permission: translate.Allow}),
		"socketpair-only": agentProfile(t, translate.Rule{Name: "socketpair", Permission: translate.Allow}),
	}
	mounts := map[string][]specs.Mount{"none": nil, "view": viewMounts, "binds": bindMounts}
	n := 0
	for _, preset := range append(apparmor.KnownPresets(), "") {
		for an, agent := range agents {
			for mn, ms := range mounts {
				p, err := apparmor.Generate(apparmor.Input{Preset: preset, Agent: agent, Mounts: ms, Exec: []string{"/opt/agent/bin/agent"}})
				if err != nil {
					t.Fatal(err)
				}
				text, err := p.Render()
				if err != nil {
					t.Fatalf("%s/%s/%s: %v", preset, an, mn, err)
				}
				if err := apparmor.Compile(ap, text); err != nil {
					t.Errorf("%s/%s/%s does not compile: %v\n%s", preset, an, mn, err, text)
				}
				n++
			}
		}
	}
	t.Logf("%d profiles compiled with %s", n, ap)
}

// TestNetworkFollowsWhitelist checks that the network rules mirror what
// the agent's seccomp stage lets socket create.
func TestNetworkFollowsWhitelist(t *testing.T) {
	render := func(agent *translate.Profile) string {
		p, err := apparmor.Generate(apparmor.Input{Agent: agent})
		if err != nil {
			t.Fatal(err)
		}
		s, err := p.Render()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := render(agentProfile(t, translate.Rule{Name: "read", Permission: translate.Allow})); !strings.Contains(s, "deny network,") {
		t.Errorf("no socket: want deny network\n%s", s)
	}
	s := render(referenceAgent(t))
	for _, want := range []string{"network inet stream,", "network inet6 dgram,", "ports [5432]"} {
		if !strings.Contains(s, want) {
			t.Errorf("reference whitelist: lacks %q\n%s", want, s)
		}
	}
	if strings.Contains(s, "deny network,") || strings.Contains(s, "network inet raw") {
		t.Errorf("reference whitelist: wrong network rules\n%s", s)
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, p := range []apparmor.Profile{
		{Name: "bad name"},
		{Name: "x", Files: []apparmor.FileRule{{Path: "relative", Perms: "r"}}},
		{Name: "x", Files: []apparmor.FileRule{{Path: "/a b", Perms: "r"}}},
		{Name: "x", Files: []apparmor.FileRule{{Path: "/a,/etc/shadow", Perms: "r"}}},
		{Name: "x", Files: []apparmor.FileRule{{Path: "/a{b", Perms: "r"}}},
		{Name: "x", Files: []apparmor.FileRule{{Path: "/a", Perms: "rwz"}}},
		{Name: "x", Files: []apparmor.FileRule{{Path: "/@{HOME}/x", Perms: "r"}}},
		{Name: "x", Capabilities: []string{"setuid,"}},
		{Name: "x", Network: []apparmor.NetworkRule{{Family: "bluetooth"}}},
		{Name: "x", Ptrace: []apparmor.PeerRule{{Access: []string{"trace,"}}}},
		{Name: "x", ChangeProfile: []string{"a b"}},
	} {
		if s, err := p.Render(); err == nil {
			t.Errorf("rendered %+v:\n%s", p, s)
		}
	}
	if _, err := apparmor.Generate(apparmor.Input{Preset: "clawos-nope"}); err == nil {
		t.Error("unknown preset accepted")
	}
}

// TestUpstreamInvalidSyntax shows the parser refuses the upstream
// specification's STRICT profile line, so the compile test would catch it.
func TestUpstreamInvalidSyntax(t *testing.T) {
	ap := parser(t)
	if err := apparmor.Compile(ap, "profile upstream {\n  deny setuid,\n}\n"); err == nil {
		t.Error("apparmor_parser accepted \"deny setuid,\"")
	}
}

func TestEnabled(t *testing.T) {
	dir := t.TempDir()
	param := filepath.Join(dir, "enabled")
	sfs := filepath.Join(dir, "securityfs")
	if err := os.MkdirAll(sfs, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		value   string
		replace bool
		want    bool
	}{{"Y\n", true, true}, {"N\n", true, false}, {"Y\n", false, false}} {
		os.WriteFile(param, []byte(c.value), 0o644)
		os.Remove(filepath.Join(sfs, ".replace"))
		if c.replace {
			os.WriteFile(filepath.Join(sfs, ".replace"), nil, 0o644)
		}
		err := apparmor.Enabled(param, sfs)
		if (err == nil) != c.want || (err != nil && !stderrors.Is(err, apparmor.ErrNotSupported)) {
			t.Errorf("%q replace=%v: %v", c.value, c.replace, err)
		}
	}
	if err := apparmor.Enabled(filepath.Join(dir, "missing"), sfs); !stderrors.Is(err, apparmor.ErrNotSupported) {
		t.Errorf("missing module: %v", err)
	}
	// This machine: AppArmor is not in the kernel (no /sys/module/apparmor).
	_, statErr := os.Stat("/sys/module/apparmor")
	err := apparmor.Enabled("/sys/module/apparmor/parameters/enabled", "/sys/kernel/security/apparmor")
	t.Logf("this kernel: %v", err)
	if statErr != nil && err == nil {
		t.Error("AppArmor reported enabled without its module")
	}
}
