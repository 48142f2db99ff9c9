package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/hook"
)

// hookStages runs clawos-hook's stages as an engine runs them, a process
// per call with the config or the state on stdin, for a container of the
// probe whitelist whose process a namespace holder stands in for.
type hookStages struct {
	tb      testing.TB
	hookBin string
	cfg     hook.Config
	config  []byte // the annotated config, before precreate
	bundle  string // config.json: the config precreate made
	state   []byte // the container's state: id "bench", the holder's pid
}

func newHookStages(tb testing.TB) *hookStages {
	hookBin, _ := filepath.Abs("../bin/clawos-hook")
	initBin, _ := filepath.Abs("../bin/clawos-init")
	dir := tb.TempDir()
	wlDir := filepath.Join(dir, "wl")
	os.MkdirAll(wlDir, 0o755)
	raw, err := os.ReadFile(probeWhitelist)
	if err != nil {
		tb.Fatal(err)
	}
	os.WriteFile(filepath.Join(wlDir, "probe.json"), raw, 0o644)
	h := &hookStages{tb: tb, hookBin: hookBin}
	h.cfg = hook.Config{WhitelistDir: wlDir, StateDir: filepath.Join(dir, "state"), AuditLog: filepath.Join(dir, "audit.jsonl"),
		Init: initBin, Hook: hookBin}.WithDefaults(hookBin)
	s := specconv.Example()
	s.Annotations = map[string]string{hook.AnnotationWhitelist: "probe"}
	s.Process.Args = []string{"/clawos-probe", "call", "39"}
	// As podman runs it: the hooks alone refuse no_new_privileges (an
	// exec would run under the container-level filter only).
	s.Process.NoNewPrivileges = false
	h.config, _ = json.Marshal(s)
	confined, _ := h.call("precreate", h.config)
	h.bundle = filepath.Join(dir, "bundle")
	os.MkdirAll(h.bundle, 0o755)
	os.WriteFile(filepath.Join(h.bundle, "config.json"), confined, 0o644)
	// prestart installs port rules in the netns of pid, and refuses a
	// container that shares the host's pid namespace: unshare's child, in
	// namespaces of its own, stands in for the container.
	holder := exec.Command("unshare", "--net", "--pid", "--ipc", "--uts", "--mount", "--cgroup", "--fork", "--kill-child", "sleep", "600")
	if err := holder.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	// Wait, bounded, for the child in its own namespaces (unshare has
	// run): the event itself, not a fixed sleep.
	self, _ := os.Readlink("/proc/self/ns/pid")
	pid := 0
	for deadline := time.Now().Add(10 * time.Second); ; {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", holder.Process.Pid, holder.Process.Pid))
		if f := strings.Fields(string(children)); len(f) > 0 {
			pid, _ = strconv.Atoi(f[0])
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && ns != self {
				break
			}
		}
		if time.Now().After(deadline) {
			tb.Fatal("the namespace holder did not unshare its namespaces")
		}
		runtime.Gosched()
	}
	h.state, _ = json.Marshal(specs.State{Version: specs.Version, ID: "bench", Status: "created", Pid: pid, Bundle: h.bundle})
	return h
}

// call runs clawos-hook's stage with stdin, failing the test if it fails.
func (h *hookStages) call(stage string, stdin []byte) ([]byte, time.Duration) {
	return h.run(specs.Hook{Path: h.hookBin, Args: append(append([]string{"clawos-hook"}, h.cfg.Args()...), stage)}, stdin)
}

// poststop is the poststop hook precreate injected into the config.
func (h *hookStages) poststop() specs.Hook {
	var spec specs.Spec
	b, err := os.ReadFile(filepath.Join(h.bundle, "config.json"))
	if err == nil {
		err = json.Unmarshal(b, &spec)
	}
	if err != nil {
		h.tb.Fatal(err)
	}
	if spec.Hooks == nil || len(spec.Hooks.Poststop) != 1 {
		h.tb.Fatalf("precreate's poststop hooks: %+v", spec.Hooks)
	}
	return spec.Hooks.Poststop[0]
}

// run runs a hook as runc does (Path, with Args as its argv), failing
// the test if it fails.
func (h *hookStages) run(hk specs.Hook, stdin []byte) ([]byte, time.Duration) {
	stage := hk.Args[len(hk.Args)-1]
	start := time.Now()
	cmd := &exec.Cmd{Path: hk.Path, Args: hk.Args, Stdin: bytes.NewReader(stdin)}
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			h.tb.Fatalf("%s: %v: %s", stage, err, ee.Stderr)
		}
		h.tb.Fatalf("%s: %v", stage, err)
	}
	return out, time.Since(start)
}
