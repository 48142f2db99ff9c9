package test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/clawos/clawos-security/translate"
)

// measureRuntimeEnv names the file TestVMMeasureRuntime writes its
// measurements to; test/baseline/generate.sh (make baselines) sets it.
const measureRuntimeEnv = "CLAWOS_MEASURE_RUNTIME"

// TestVMMeasureRuntime is test/baseline/measure-runtime.sh for a foreign
// architecture (aarch64): it boots the aarch64 guest of the VM matrix in its
// measurement configuration, where the container filter's default is
// SCMP_ACT_LOG, and reads back what libcontainer's init (embedded in
// clawos-run, five runs), runc's init (run, exec, run without
// no_new_privs), clawos-init and clawos-init --init call under it. It writes the measurements,
// keyed by internal baseline, to $CLAWOS_MEASURE_RUNTIME as JSON. It is a
// measuring tool, run by make baselines only: without the variable it does
// nothing.
func TestVMMeasureRuntime(t *testing.T) {
	out := os.Getenv(measureRuntimeEnv)
	if out == "" {
		t.Skipf("a measuring tool: set %s=FILE (make baselines does)", measureRuntimeEnv)
	}
	const archName = "aarch64"
	s := requireSandbox(t)
	arch := vmArches[archName]
	initrd := buildInitramfs(t, s, archName, measureBundle(t, archName))
	results, console, _ := bootVM(t, arch, arch.kernel, initrd, "clawos.vm=measure log_buf_len=4M")
	if results["done"] == "" {
		t.Fatalf("the VM did not finish:\n%s", tail(console, 40))
	}
	a := translate.Arch(archName)
	measurement := func(label, key string) map[string]any {
		var names []string
		for _, f := range strings.Split(results["measure "+key], ",") {
			nr, err := strconv.Atoi(f)
			if err != nil {
				t.Fatalf("measure %s: %q is not a syscall number:\n%s", key, f, tail(console, 40))
			}
			name := a.SyscallName(nr)
			if name == "" {
				t.Fatalf("measure %s: %d is no %s syscall", key, nr, archName)
			}
			names = append(names, name)
		}
		sort.Strings(names)
		return map[string]any{"program": label, "arch": archName, "kernel": results["kernel"],
			"tool": "seccomp SCMP_ACT_LOG, kernel audit log (qemu-system-aarch64 guest)", "syscalls": names}
	}
	runc := "runc version " + results["runc-version"]
	libcontainer := goModVersion(t, "github.com/opencontainers/runc")
	glibc, _ := exec.Command("dpkg-query", "-W", "-f=${Version}", "libc6-dev-arm64-cross").Output()
	m := map[string][]map[string]any{
		"runtime-runc": {
			measurement(runc+" init after loading the container filter (runc run, no_new_privs)", "runc-run"),
			measurement(runc+" init after loading the container filter (runc exec --process, no_new_privs)", "runc-exec"),
		},
		"runtime-runc-privs": {measurement(runc+" init after loading the container filter (runc run, without no_new_privs)", "runc-privs")},
		"clawos-init":        {measurement("clawos-init (static, glibc "+string(glibc)+", cross-compiled) before loading the exact filter", "clawos-init")},
		"clawos-init-reaper": {measurement("clawos-init --init (static, glibc "+string(glibc)+", cross-compiled): the agent's start, and pid 1 reaping and forwarding a SIGTERM", "clawos-init-reaper")},
	}
	seen := map[string]bool{}
	for i := 1; i <= 5; i++ {
		e := measurement("libcontainer "+libcontainer+" (embedded in clawos-run) init after loading the container filter (no_new_privs)", fmt.Sprintf("embedded-%d", i))
		if k := fmt.Sprint(e["syscalls"]); !seen[k] {
			seen[k] = true
			m["runtime-embedded"] = append(m["runtime-embedded"], e)
		}
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// measureBundle writes the bundle configurations of the measurement
// configuration (test/vm/init.sh, "measure"), as measure-runtime.sh prepares
// them: runc's default spec, the probe under clawos-init with an allow-all
// agent filter, and a container filter that logs every call.
func measureBundle(t *testing.T, archName string) map[string][]byte {
	dir := t.TempDir()
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v %s", err, out)
	}
	getpid, _ := translate.Arch(archName).SyscallNumber("getpid")
	call := []string{"/.clawos/clawos-probe", "call", strconv.Itoa(getpid)}
	strs := func(a []string) []any {
		var out []any
		for _, s := range a {
			out = append(out, s)
		}
		return out
	}
	initArgs := func(extra ...string) []any {
		return strs(append([]string{"/.clawos/clawos-init", "/.clawos/allow.bpf", "--exec", "/.clawos/clawos-probe"}, extra...))
	}
	config := func(nnp bool, args []any) []byte {
		var spec map[string]any
		if err := json.Unmarshal(mustRead(t, filepath.Join(dir, "config.json")), &spec); err != nil {
			t.Fatal(err)
		}
		proc := spec["process"].(map[string]any)
		proc["terminal"], proc["noNewPrivileges"], proc["args"] = false, nnp, args
		spec["root"] = map[string]any{"path": "rootfs", "readonly": true}
		spec["mounts"] = append(spec["mounts"].([]any), map[string]any{"destination": "/.clawos", "type": "bind",
			"source": "/measure/bundle/clawos", "options": []any{"bind", "ro", "nosuid", "nodev"}})
		linux := spec["linux"].(map[string]any)
		linux["seccomp"] = map[string]any{"defaultAction": "SCMP_ACT_LOG", "architectures": []any{string(translate.Arch(archName).OCI())}, "flags": []any{}}
		b, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ready := config(true, append(initArgs("--"), "/.clawos/clawos-probe", "ready"))
	var readySpec map[string]any
	if err := json.Unmarshal(ready, &readySpec); err != nil {
		t.Fatal(err)
	}
	proc := readySpec["process"].(map[string]any)
	proc["args"] = append(initArgs("--"), strs(call)...)
	process, err := json.Marshal(proc)
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"measure/config-run.json":         config(true, append(initArgs("--parent-fd", "3", "--exec-at", "0x123456789000", "--"), strs(call)...)),
		"measure/config-ready.json":       ready,
		"measure/process.json":            process,
		"measure/config-privs.json":       config(false, strs(call)),
		"measure/config-reaper.json":      config(true, append(initArgs("--init", "--parent-fd", "3", "--"), "/.clawos/clawos-probe", "ready")),
		"measure/bundle/clawos/allow.bpf": {0x06, 0, 0, 0, 0, 0, 0xff, 0x7f}, // ret SECCOMP_RET_ALLOW
	}
}

// goModVersion is the version of module path this module builds with.
func goModVersion(t *testing.T, path string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", path).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}
