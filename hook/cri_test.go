package hook

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/runcargs"
)

func TestApplyCRI(t *testing.T) {
	cfg := testConfig(t)
	t.Run("sandbox untouched where configured as a CRI runtime", func(t *testing.T) {
		cri := cfg
		cri.CRI = true
		s := exampleSpec(map[string]string{AnnotationWhitelist: "probe", runcargs.AnnotationCRIContainerType: runcargs.CRISandbox})
		if out, err := Apply(s, cri, quiet()); out != nil || err != nil || s.Process.Args[0] != "/agent" {
			t.Errorf("out %v err %v args %v", out, err, s.Process.Args)
		}
	})
	t.Run("sandbox marker with a whitelist refused elsewhere", func(t *testing.T) {
		s := exampleSpec(map[string]string{AnnotationWhitelist: "probe", runcargs.AnnotationCRIContainerType: runcargs.CRISandbox})
		_, err := Apply(s, cfg, quiet())
		var ce *clawerr.Error
		if !errors.As(err, &ce) || ce.Code != clawerr.EPerm || ce.Path != "annotations."+runcargs.AnnotationCRIContainerType {
			t.Errorf("err %v", err)
		}
		if s.Process.Args[0] != "/agent" {
			t.Errorf("args %v", s.Process.Args)
		}
	})
	t.Run("sandbox marker alone passes", func(t *testing.T) {
		s := exampleSpec(map[string]string{runcargs.AnnotationCRIContainerType: runcargs.CRISandbox})
		if out, err := Apply(s, cfg, quiet()); out != nil || err != nil {
			t.Errorf("out %v err %v", out, err)
		}
	})
	t.Run("empty annotation refused", func(t *testing.T) {
		s := exampleSpec(map[string]string{AnnotationWhitelist: "probe", runcargs.AnnotationCRIContainerName: "web", runcargs.ContainerWhitelistPrefix + "web": ""})
		_, err := Apply(s, cfg, quiet())
		var ce *clawerr.Error
		if !errors.As(err, &ce) || ce.Code != clawerr.EProto || ce.Path != "annotations."+runcargs.ContainerWhitelistPrefix+"web" {
			t.Errorf("err %v", err)
		}
	})
}

// runcState writes a runc state directory for container id whose bundle
// holds spec, as runc 1.1 does (the bundle is a label of its config).
func runcState(t *testing.T, id string, spec *specs.Spec) (root, bundle string) {
	t.Helper()
	root, bundle = t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, id), 0o700)
	st, _ := json.Marshal(map[string]any{"id": id, "config": map[string]any{"labels": []string{"bundle=" + bundle}}})
	os.WriteFile(filepath.Join(root, id, "state.json"), st, 0o600)
	b, _ := json.Marshal(spec)
	os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644)
	return root, bundle
}

func TestWrapExec(t *testing.T) {
	cfg := testConfig(t)
	confined := exampleSpec(map[string]string{AnnotationWhitelist: "probe"})
	if _, err := Apply(confined, cfg, quiet()); err != nil {
		t.Fatal(err)
	}
	prefix, err := initPrefix(confined)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := runcState(t, "c1", confined)
	plainRoot, _ := runcState(t, "c2", exampleSpec(nil))

	t.Run("process file rewritten", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "process.json")
		b, _ := json.Marshal(specs.Process{Args: []string{"sh", "-c", "id"}, Cwd: "/", NoNewPrivileges: false,
			Capabilities: &specs.LinuxCapabilities{Effective: []string{"CAP_SYS_ADMIN"}}})
		os.WriteFile(p, b, 0o600)
		args := []string{"--root", root, "exec", "--process", p, "--detach", "c1"}
		got, out, err := WrapExec(runcargs.Parse(args, "/"), args)
		if err != nil || out == nil || !reflect.DeepEqual(got, args) {
			t.Fatalf("args %v out %v err %v", got, out, err)
		}
		proc, err := readProcess(p)
		if err != nil {
			t.Fatal(err)
		}
		want := append(append([]string{}, prefix...), "sh", "-c", "id")
		if !reflect.DeepEqual(proc.Args, want) || !proc.NoNewPrivileges || len(proc.Capabilities.Effective) != 0 {
			t.Errorf("process %+v", proc)
		}
	})
	t.Run("command line form", func(t *testing.T) {
		args := []string{"--root", root, "exec", "-t", "c1", "sh", "-c", "id"}
		got, _, err := WrapExec(runcargs.Parse(args, "/"), args)
		want := append(append([]string{"--root", root, "exec", "-t", "c1"}, prefix...), "sh", "-c", "id")
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("args %v err %v", got, err)
		}
	})
	for _, c := range []struct {
		name string
		args []string
		code clawerr.Code
	}{
		{"--cap refused", []string{"--root", root, "exec", "--cap", "CAP_SYS_ADMIN", "c1", "sh"}, clawerr.EPerm},
		{"no command", []string{"--root", root, "exec", "c1"}, clawerr.EProto},
		{"unknown container", []string{"--root", root, "exec", "c9", "sh"}, clawerr.ENoEnt},
		{"id with a path", []string{"--root", root, "exec", "../c1", "sh"}, clawerr.ENoEnt},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := WrapExec(runcargs.Parse(c.args, "/"), c.args)
			if clawerr.CodeOf(err) != c.code {
				t.Errorf("err %v, want %v", err, c.code)
			}
		})
	}
	t.Run("unconfined container passes", func(t *testing.T) {
		args := []string{"--root", plainRoot, "exec", "c2", "sh"}
		got, out, err := WrapExec(runcargs.Parse(args, "/"), args)
		if err != nil || out != nil || !reflect.DeepEqual(got, args) {
			t.Errorf("args %v out %v err %v", got, out, err)
		}
	})
	if !strings.HasPrefix(prefix[0], confine.Dir) {
		t.Errorf("prefix %v", prefix)
	}
}
