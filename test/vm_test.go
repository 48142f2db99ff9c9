package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/apparmor"
	"github.com/clawos/clawos-security/translate"
)

// vmKernelEnv overrides the kernel image the AppArmor VM boots.
const vmKernelEnv = "CLAWOS_VM_KERNEL"

// vmConfigs are the configurations of the VM matrix: Debian's 6.1 LTS
// kernel (make vm-kernel) booted under qemu with software emulation, each
// with its own kernel command line and its own checks in test/vm/init.sh.
// Each prints one summary line:
//
//	vm NAME: kernel VERSION arch ARCH cgroup v1|v2 landlock ABI|off apparmor on|off: PASS
var vmConfigs = []struct {
	name, append string
	want         map[string]string
}{
	{"apparmor", "", map[string]string{
		"apparmor-enabled": "Y",
		"enforce-load":     "ok",
		"complain-load":    "ok",
		// enforce: what the profile does not grant fails with EACCES
		"enforce write-outside-profile": eacces,
		"enforce write-tmp":             "0",
		"enforce socket-unix":           eacces,
		"enforce socket-inet-stream":    "0",
		// complain: the same calls succeed (and are logged)
		"complain write-outside-profile": "0",
		"complain write-tmp":             "0",
		"complain socket-unix":           "0",
		"complain socket-inet-stream":    "0",
		// clawos-run --apparmor required: the agent under its profile
		"run-required": "0",
		"run-label":    "clawos-ID:enforce",
	}},
	{"cgroupv2", "", map[string]string{
		"cgroup":           "v2",
		"v2 forks-200":     "11",  // EAGAIN: pids.max 128 of the wasm slice
		"v2 forks-100":     "0",   //
		"v2 alloc-700":     "137", // OOM kill: memory.max 512M, no swap
		"v2 alloc-100":     "0",   //
		"v2 unlisted-kill": "159", // the filter kills getuid
		"v2 exec-kill":     "159", // start-only exec
		"v2 cgroups-left":  "0",
		"v2 bundles-left":  "0",
		"apparmor-enabled": "Y",
	}},
	{"nolandlock", "lsm=lockdown,yama,apparmor", map[string]string{
		"landlock":                  "off",
		"nl start-only-auto":        "0",   // no program but the agent starts: seccomp alone
		"nl start-only-exec-kill":   "159", //
		"nl exec-allowed-auto":      "125", // refused: what it may execute needs Landlock
		"nl exec-allowed-auto-says": "1",
		"nl required":               "125",
		"nl exec-allowed-off":       "0",
		"nl init-bare-name":         "0", // the hook's clawos-init resolves a bare name without Landlock
	}},
}

var eacces = strconv.Itoa(int(unix.EACCES))

// TestVM runs the VM matrix: AppArmor enforcement (the apparmor package's
// profile, and clawos-run --apparmor required), a cgroup v2 host
// (clawos-run's embedded runtime, a static build, with a P1.5 slice: the
// pids and memory limits hold, nothing is left), a kernel without Landlock
// (--landlock auto and required, start-only exec without it, clawos-init's
// bare command names), and the seccomp kernel tests on that kernel in each.
// The configurations boot in parallel from one initramfs.
func TestVM(t *testing.T) {
	s := requireSandbox(t)
	kernel := os.Getenv(vmKernelEnv)
	if kernel == "" {
		kernel = "../.cache/vm/vmlinuz"
	}
	if _, err := os.Stat(kernel); err != nil {
		t.Fatalf("no kernel image for the VM (%v): run make vm-kernel", err)
	}
	for _, tool := range []string{"qemu-system-x86_64", "cpio", "apparmor_parser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: .ci/setup installs it", tool)
		}
	}
	initrd := buildInitramfs(t, s)
	for _, cfg := range vmConfigs {
		t.Run(cfg.name, func(t *testing.T) {
			t.Parallel()
			results, console, took := bootVM(t, kernel, initrd, strings.TrimSpace("clawos.vm="+cfg.name+" "+cfg.append))
			if results["done"] == "" {
				t.Fatalf("the VM did not finish:\n%s", tail(console, 40))
			}
			want := map[string]string{"seccomp-tests": "PASS", "config": cfg.name}
			for k, v := range cfg.want {
				want[k] = v
			}
			for key, v := range want {
				if got := results[key]; got != v {
					t.Errorf("%s: %q, want %q", key, got, v)
				}
			}
			mins := map[string]int{"seccomp-cases-passed": 150}
			if cfg.name == "apparmor" {
				mins["enforce logged-denied"], mins["complain logged-allowed"] = 2, 2
			}
			for key, min := range mins {
				if n, _ := strconv.Atoi(results[key]); n < min {
					t.Errorf("%s: %d, want at least %d", key, n, min)
				}
			}
			verdict := "PASS"
			if t.Failed() {
				verdict = "FAIL"
				t.Logf("console:\n%s", tail(console, 40))
			}
			apparmorOn := "off"
			if results["apparmor-enabled"] == "Y" {
				apparmorOn = "on"
			}
			landlock := results["landlock"]
			fmt.Printf("vm %s: kernel %s arch %s cgroup %s landlock %s apparmor %s: %s\n", cfg.name, results["kernel"], results["arch"],
				results["cgroup"], landlock, apparmorOn, verdict)
			t.Logf("booted and ran in %v", took.Round(time.Second))
		})
	}
}

// buildInitramfs builds the VMs' initramfs: busybox, apparmor_parser with
// its libraries, the static probe, clawos-init, a static clawos-run, the
// test whitelists, a profile generated by package apparmor, and the
// seccomp kernel tests.
func buildInitramfs(t *testing.T, s sandboxTools) string {
	busybox := "/bin/busybox"
	if out, _ := exec.Command("ldd", busybox).CombinedOutput(); !bytes.Contains(out, []byte("not a dynamic executable")) {
		t.Fatalf("%s is not static (install busybox-static): %s", busybox, out)
	}
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for _, d := range []string{"bin", "sbin", "proc", "sys", "tmp", "dev", "etc", "run", "profiles", "vmtest/test", "vmtest/examples"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, dev := range []struct {
		name         string
		major, minor uint32
	}{{"console", 5, 1}, {"null", 1, 3}} {
		if err := unix.Mknod(filepath.Join(root, "dev", dev.name), unix.S_IFCHR|0o600, int(unix.Mkdev(dev.major, dev.minor))); err != nil {
			t.Fatal(err)
		}
	}
	copyIn := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	// A dynamic program and the libraries ldd names, at the same paths.
	withLibs := func(src, dst string) {
		copyIn(src, dst, 0o755)
		out, err := exec.Command("ldd", src).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", src, err)
		}
		for _, m := range regexp.MustCompile(`(/[^\s]+\.so[^\s]*)`).FindAllString(string(out), -1) {
			copyIn(m, m, 0o755)
		}
	}
	copyIn(busybox, "bin/busybox", 0o755)
	copyIn("vm/init.sh", "init", 0o755)
	copyIn("/etc/apparmor.d/abi/3.0", "etc/apparmor.d/abi/3.0", 0o644)
	copyIn(s.probe, "clawos-probe", 0o755)
	copyIn(built(t, "../bin/clawos-init"), "clawos-init", 0o755)
	parser, _ := exec.LookPath("apparmor_parser")
	withLibs(parser, "sbin/apparmor_parser")
	copyIn("../examples/ironclaw.whitelist.json", "vmtest/examples/ironclaw.whitelist.json", 0o644)
	copyIn("testdata/minimal.whitelist.json", "vmtest/minimal.json", 0o644)
	// The probe whitelist without its port rules (no nftables in the VM's
	// kernel: it has no modules), and with execve allowed.
	vmprobe := vmWhitelist(t, false)
	os.WriteFile(filepath.Join(root, "vmtest/vmprobe.json"), vmprobe, 0o644)
	os.WriteFile(filepath.Join(root, "vmtest/exec-allowed.json"), vmWhitelist(t, true), 0o644)
	// clawos-run, static: the embedded runtime needs no runc program.
	staticRun := filepath.Join(dir, "clawos-run")
	build := exec.Command("go", "build", "-buildmode=pie", "-tags", "seccomp,netgo,osusergo",
		"-ldflags", `-linkmode external -extldflags "-static-pie"`, "-o", staticRun, "../cmd/clawos-run")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build a static clawos-run: %v %s", err, out)
	}
	copyIn(staticRun, "clawos-run", 0o755)
	testBin := filepath.Join(dir, "test.test")
	if out, err := exec.Command("go", "test", "-c", "-tags", "seccomp", "-o", testBin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build the seccomp tests: %v %s", err, out)
	}
	withLibs(testBin, "vmtest/test/test.test")

	// The profile: what package apparmor generates for a whitelist whose
	// socket rule is port-restricted (inet and inet6 stream and datagram).
	agent, err := translate.Translate(&translate.Whitelist{Syscalls: []translate.Rule{{Name: "socket", Permission: translate.Conditional,
		Conditions: &translate.Conditions{Description: "db", PortRestriction: &translate.PortRestriction{AllowedPorts: []int{5432}}}}}}, translate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	prof, err := apparmor.Generate(apparmor.Input{Name: "clawos-vm-probe", Agent: agent, Exec: []string{"/clawos-probe"}})
	if err != nil {
		t.Fatal(err)
	}
	text, err := prof.Render()
	if err != nil {
		t.Fatal(err)
	}
	if err := apparmor.Compile(parser, text); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "profiles/probe.aa"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	cpio := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet > "+initrd)
	cpio.Dir = root
	if out, err := cpio.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, out)
	}
	return initrd
}

// vmWhitelist is the probe whitelist without socket and connect (their
// port rules need nftables), with execve allowed when exec.
func vmWhitelist(t *testing.T, exec bool) []byte {
	raw, err := os.ReadFile(probeWhitelist)
	if err != nil {
		t.Fatal(err)
	}
	var wl map[string]any
	if err := json.Unmarshal(raw, &wl); err != nil {
		t.Fatal(err)
	}
	delete(wl, "signature")
	var rules []any
	for _, r := range wl["syscalls"].([]any) {
		if n := r.(map[string]any)["name"]; n != "socket" && n != "connect" {
			rules = append(rules, r)
		}
	}
	if exec {
		rules = append(rules, map[string]any{"name": "execve", "permission": "ALLOW"})
	}
	wl["syscalls"] = rules
	b, err := json.Marshal(wl)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bootVM boots kernel with initrd and the command line, and returns the
// "CLAWOS <key...> <value>" results, the console and the time it took.
func bootVM(t *testing.T, kernel, initrd, cmdline string) (map[string]string, string, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	qemu := exec.CommandContext(ctx, "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "1536", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 panic=-1 quiet "+cmdline)
	qemu.WaitDelay = 5 * time.Second
	out, err := qemu.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := qemu.Start(); err != nil {
		t.Fatal(err)
	}
	results := map[string]string{}
	var console strings.Builder
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		console.WriteString(line + "\n")
		// The first line may follow the firmware's terminal escapes.
		if i := strings.Index(line, "CLAWOS "); i > 0 {
			line = line[i:]
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "CLAWOS":
			results[f[1]] = f[1]
		case len(f) >= 3 && f[0] == "CLAWOS":
			results[strings.Join(f[1:len(f)-1], " ")] = f[len(f)-1]
		}
	}
	io.Copy(io.Discard, out)
	qemu.Wait()
	return results, console.String(), time.Since(start)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
