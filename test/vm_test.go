package test

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
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
// kernels for x86_64 and aarch64 and bookworm-backports' 6.12 (make
// vm-kernel) booted under qemu with software emulation, each with its own
// kernel command line and its own checks in test/vm/init.sh.
// Each prints one summary line:
//
//	vm NAME: kernel VERSION arch ARCH cgroup v1|v2 landlock ABI|off apparmor on|off: PASS
var vmConfigs = []struct {
	name, append string
	// arch is the guest's architecture (x86_64 unless set).
	arch string
	// kernel is the image to boot when not the architecture's (vmArch).
	kernel string
	want   map[string]string
}{
	{"apparmor", "", "", "", map[string]string{
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
		// named by a digest of their text, loaded per sandbox start,
		// removed after the last user
		"aa-after-run":  "0",
		"aa-two-loaded": "2",
		"aa-unloaded":   "0",
	}},
	{"cgroupv2", "", "", "", map[string]string{
		"cgroup":             "v2",
		"v2 forks-200":       "11",          // EAGAIN: pids.max 128 of the wasm slice
		"v2 forks-100":       "0",           //
		"v2 alloc-600":       "137",         // OOM kill: memory.max 512M, no swap
		"v2 alloc-8":         "0",           //
		"v2 unlisted-kill":   "159",         // the filter kills getuid
		"v2 exec-kill":       "159",         // start-only exec
		"v2 handoff-program": "clawos-wait", // handed off
		"v2 handoff":         "137",         // SIGTERM forwarded, the agent killed after --kill-after
		"v2 cgroups-left":    "0",
		"v2 bundles-left":    "0",
		"apparmor-enabled":   "Y",
	}},
	{"nolandlock", "lsm=lockdown,yama,apparmor", "", "", map[string]string{
		"landlock":                  "off",
		"nl start-only-auto":        "0",   // no program but the agent starts: seccomp alone
		"nl start-only-exec-kill":   "159", //
		"nl exec-allowed-auto":      "125", // refused: what it may execute needs Landlock
		"nl exec-allowed-auto-says": "1",
		"nl required":               "125",
		"nl exec-allowed-off":       "0",
		"nl init-bare-name":         "0",   // the hook's clawos-init resolves a bare name without Landlock
		"nl hostnet-ports":          "125", // port rules in the host's network namespace: no Landlock network rules, refused
		"nl hostnet-ports-says":     "1",
	}},
	// No ia32 syscalls (ia32_emulation=0, Linux 6.7+: bookworm-backports'
	// 6.12), as on hardened distributions: int 0x80 dies of SIGSEGV before
	// seccomp, with or without a sandbox, and clawos-run --check says so; the
	// seccomp kernel tests expect exactly that, and the evaluator's kill.
	{"noia32", "ia32_emulation=0", "", "../.cache/vm/backports/vmlinuz", map[string]string{
		"noia32 check-says-refused":   "1",
		"noia32 int80-unfiltered":     "139", // SIGSEGV: the platform refuses
		"noia32 int80-sandboxed":      "139",
		"noia32 x32-sandboxed":        "159", // x32 is still killed by the filter
		"noia32 getpid-sandboxed":     "0",
		"noia32 hostnet-getpid":       "0",  // --net host with port rules: Landlock ABI 6 holds them
		"noia32 hostnet-refused-port": "13", // EACCES: Landlock refuses TCP connect to 8080
		"noia32 modules":              "loaded",
		"noia32 demo":                 "0", // make demo: every row as predicted, int 0x80 refused by the platform
		"noia32 demo-says-refused":    "1",
	}},
	// aarch64: everything built for it (a cross-compiled static clawos-init,
	// probe and clawos-run; the seccomp kernel tests cross-compiled with
	// libseccomp), nothing reasoned about.
	{"aarch64", "", "aarch64", "", map[string]string{
		"arch":                   "aarch64",
		"cgroup":                 "v1",
		"a64 status":             "0",   // the embedded runtime starts the agent under its filter
		"a64 unlisted-kill":      "159", // the aarch64 filter kills getuid
		"a64 exec-kill":          "159", // start-only exec
		"a64 runc-status":        "0",   // the same through Debian's arm64 runc
		"a64 runc-unlisted-kill": "159",
		"a64 runc-exec-kill":     "159",
		"a64 exec-allowed":       "13",  // execve allowed: Landlock allows the read-only view only (clawos-init's directory: EACCES)
		"a64 init-status":        "0",   // --init: pid 1 reaps, the agent its child
		"a64 init-unlisted-kill": "159", // the agent's kill, through pid 1's status
		"a64 runc-init-status":   "0",
		"a64 forks-200":          "11", // EAGAIN: pids.max 128 of the wasm slice
		"a64 forks-100":          "0",
		"a64 handoff-program":    "clawos-wait", // cross-built; execveat back into clawos-run
		"a64 handoff":            "137",
		"a64 handoff-kill":       "159",
		"a64 bundles-left":       "0",
		"a64 init-bpf-allowed":   "0",   // clawos-init loads a filter compiled on the host
		"a64 init-bpf-kill":      "159", // (clawos-policy compile --arch aarch64 -o)
		"a64 init-bpf-denied":    "1",   // EPERM from a DENY rule
		"a64 probe-bpf-allowed":  "0",   // the probe loads the same exported bytes itself
		"a64 probe-bpf-kill":     "159",
	}},
}

// vmArch is how to build for and boot one guest architecture.
type vmArch struct {
	goarch  string
	cc      string   // C compiler for static programs
	qemu    []string // the emulator and its machine
	console string
	// kernel and busybox: make vm-kernel puts them there; runc too for a
	// foreign guest (this host's runc serves its own architecture).
	kernel, busybox, runc string
}

var vmArches = map[string]vmArch{
	"x86_64": {"amd64", "gcc", []string{"qemu-system-x86_64", "-accel", "tcg", "-cpu", "max"}, "ttyS0",
		"../.cache/vm/vmlinuz", "/bin/busybox", ""},
	"aarch64": {"arm64", "aarch64-linux-gnu-gcc", []string{"qemu-system-aarch64", "-M", "virt", "-accel", "tcg", "-cpu", "max,pauth-impdef=on", "-smp", "2"}, "ttyAMA0",
		"../.cache/vm/arm64/vmlinuz", "../.cache/vm/arm64/busybox", "../.cache/vm/arm64/runc"},
}

var eacces = strconv.Itoa(int(unix.EACCES))

// TestVM runs the VM matrix: AppArmor enforcement (the apparmor package's
// profile, and clawos-run --apparmor required), a cgroup v2 host
// (clawos-run's embedded runtime, a static build, with a P1.5 slice: the
// pids and memory limits hold, nothing is left), a kernel without Landlock
// (--landlock auto and required, start-only exec without it, clawos-init's
// bare command names), a kernel that refuses ia32 calls, an aarch64 guest (clawos-run, clawos-init and the
// probe built for it; filters compiled there and on this host), and the
// seccomp kernel tests on that kernel in each. Each architecture's
// initramfs is built once; the configurations boot in parallel.
func TestVM(t *testing.T) {
	s := requireSandbox(t)
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatal("cpio is missing: .ci/setup installs it")
	}
	for _, archName := range []string{"x86_64", "aarch64"} {
		arch := vmArches[archName]
		t.Run(archName, func(t *testing.T) {
			t.Parallel()
			kernel := arch.kernel
			if k := os.Getenv(vmKernelEnv); k != "" && archName == "x86_64" {
				kernel = k
			}
			for _, f := range []string{kernel, arch.busybox, arch.runc} {
				if f == "" {
					continue
				}
				if _, err := os.Stat(f); err != nil {
					t.Fatalf("%v: run make vm-kernel", err)
				}
			}
			for _, tool := range []string{arch.qemu[0], arch.cc} {
				if _, err := exec.LookPath(tool); err != nil {
					t.Fatalf("%s is missing: .ci/setup installs it", tool)
				}
			}
			initrd := buildInitramfs(t, s, archName, nil)
			for _, cfg := range vmConfigs {
				if cfg.arch == "" && archName != "x86_64" || cfg.arch != "" && cfg.arch != archName {
					continue
				}
				k := kernel
				if cfg.kernel != "" {
					k = cfg.kernel
					if _, err := os.Stat(k); err != nil {
						t.Fatalf("%v: run make vm-kernel", err)
					}
				}
				t.Run(cfg.name, func(t *testing.T) {
					t.Parallel()
					runVMConfig(t, arch, k, initrd, cfg.name, cfg.append, cfg.want)
				})
			}
		})
	}
}

// runVMConfig boots one configuration, checks its results and prints its
// summary line.
func runVMConfig(t *testing.T, arch vmArch, kernel, initrd, name, appendArgs string, cfgWant map[string]string) {
	results, console, took := bootVM(t, arch, kernel, initrd, strings.TrimSpace("clawos.vm="+name+" "+appendArgs))
	if results["done"] == "" {
		t.Fatalf("the VM did not finish:\n%s", tail(console, 40))
	}
	want := map[string]string{"seccomp-tests": "PASS", "config": name}
	for k, v := range cfgWant {
		want[k] = v
	}
	for key, v := range want {
		if got := results[key]; got != v {
			t.Errorf("%s: %q, want %q", key, got, v)
		}
	}
	mins := map[string]int{"seccomp-cases-passed": 150}
	if name == "apparmor" {
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
	fmt.Printf("vm %s: kernel %s arch %s cgroup %s landlock %s apparmor %s: %s\n", name, results["kernel"], results["arch"],
		results["cgroup"], results["landlock"], apparmorOn, verdict)
	var stamps []string
	for k := range results {
		if strings.HasPrefix(k, "t-") {
			stamps = append(stamps, k)
		}
	}
	uptime := func(k string) float64 { f, _ := strconv.ParseFloat(results[k], 64); return f }
	sort.Slice(stamps, func(i, j int) bool { return uptime(stamps[i]) < uptime(stamps[j]) })
	for i, k := range stamps {
		stamps[i] = results[k] + "s " + k[2:]
	}
	t.Logf("booted and ran in %v; guest uptime at: %s", took.Round(time.Second), strings.Join(stamps, ", "))
}

// buildInitramfs builds the VMs' initramfs for one architecture: busybox,
// the static probe, clawos-init, a static clawos-run, the test whitelists,
// the syscall numbers of the guest (vmtest/nr.sh), a filter compiled on
// this host for the guest (clawos-policy compile --arch), the seccomp
// kernel tests and the extra files named (path in the guest: content); for this host's own architecture also apparmor_parser with
// its libraries and a profile generated by package apparmor. Programs for
// another architecture are cross-compiled (static, libseccomp included).
func buildInitramfs(t *testing.T, s sandboxTools, archName string, extra map[string][]byte) string {
	arch := vmArches[archName]
	native := archName == string(translate.NativeArch())
	if out, _ := exec.Command("ldd", arch.busybox).CombinedOutput(); !bytes.Contains(out, []byte("not a dynamic executable")) {
		t.Fatalf("%s is not static (install busybox-static): %s", arch.busybox, out)
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
	writeIn := func(dst string, b []byte, mode os.FileMode) {
		p := filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	copyIn := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		writeIn(dst, b, mode)
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
	// cgo builds for the guest: static, with the guest's libseccomp.
	goBuild := func(args ...string) {
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1", "GOARCH="+arch.goarch, "CC="+arch.cc)
		if !native {
			multiarch := archName + "-linux-gnu"
			cmd.Env = append(cmd.Env, "PKG_CONFIG_LIBDIR=/usr/lib/"+multiarch+"/pkgconfig:/usr/share/pkgconfig")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v %s", strings.Join(args, " "), err, out)
		}
	}
	cc := func(src, out string) string {
		p := filepath.Join(dir, out)
		if b, err := exec.Command(arch.cc, "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", p, src).CombinedOutput(); err != nil {
			t.Fatalf("%s %s: %v %s", arch.cc, src, err, b)
		}
		return p
	}
	// A foreign dynamic program: its interpreter and the libraries it
	// names, from this host's multiarch directory for the guest.
	foreignWithLibs := func(src, dst string) {
		copyIn(src, dst, 0o755)
		f, err := elf.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		libs, err := f.ImportedLibraries()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				b, err := io.ReadAll(p.Open())
				if err != nil {
					t.Fatal(err)
				}
				interp := strings.TrimRight(string(b), "\x00")
				resolved, err := filepath.EvalSymlinks(interp)
				if err != nil {
					t.Fatalf("%s's interpreter %s: %v (.ci/setup installs the guest's libc)", src, interp, err)
				}
				copyIn(resolved, interp, 0o755)
			}
		}
		for _, l := range libs {
			copyIn(filepath.Join("/usr/lib", archName+"-linux-gnu", l), filepath.Join("usr/lib", archName+"-linux-gnu", l), 0o755)
		}
	}
	copyIn(arch.busybox, "bin/busybox", 0o755)
	if arch.runc != "" {
		foreignWithLibs(arch.runc, "bin/runc")
	}
	copyIn("vm/init.sh", "init", 0o755)
	if native {
		copyIn(s.probe, "clawos-probe", 0o755)
		copyIn(built(t, "../bin/clawos-init"), "clawos-init", 0o755)
		copyIn(built(t, "../bin/clawos-wait"), "clawos-wait", 0o755)
	} else {
		copyIn(cc("probe/probe.c", "clawos-probe"), "clawos-probe", 0o755)
		copyIn(cc("../cmd/clawos-init/init.c", "clawos-init"), "clawos-init", 0o755)
		copyIn(cc("../cmd/clawos-wait/wait.c", "clawos-wait"), "clawos-wait", 0o755)
	}
	copyIn("../examples/ironclaw.whitelist.json", "vmtest/examples/ironclaw.whitelist.json", 0o644)
	copyIn("testdata/minimal.whitelist.json", "vmtest/minimal.json", 0o644)
	// The probe whitelist without its port rules (no nftables in the VM's
	// kernel: it has no modules), and with execve allowed.
	writeIn("vmtest/vmprobe.json", vmWhitelist(t, false), 0o644)
	writeIn("vmtest/exec-allowed.json", vmWhitelist(t, true), 0o644)
	// The guest's syscall numbers, for init.sh.
	var nrs strings.Builder
	for _, name := range []string{"getuid", "getgid", "geteuid", "getppid", "getpid", "write"} {
		n, ok := translate.Arch(archName).SyscallNumber(name)
		if !ok {
			t.Fatalf("%s is not a syscall on %s", name, archName)
		}
		fmt.Fprintf(&nrs, "NR_%s=%d\n", name, n)
	}
	writeIn("vmtest/nr.sh", []byte(nrs.String()), 0o644)
	// A filter compiled here for the guest, as a user would cross-compile
	// one: minimal's calls, getppid allowed, geteuid denied (EPERM), and the
	// measured start baseline (clawos-init's execve and the probe's start).
	var wl map[string]any
	if err := json.Unmarshal(mustRead(t, "testdata/minimal.whitelist.json"), &wl); err != nil {
		t.Fatal(err)
	}
	delete(wl, "signature")
	wl["syscalls"] = append(wl["syscalls"].([]any), map[string]any{"name": "getppid", "permission": "ALLOW"},
		map[string]any{"name": "geteuid", "permission": "DENY"})
	wlFile := filepath.Join(dir, "cross.json")
	if b, err := json.Marshal(wl); err != nil || os.WriteFile(wlFile, b, 0o644) != nil {
		t.Fatal("write the cross-compiled whitelist", err)
	}
	bpf := filepath.Join(dir, "cross.bpf")
	if out, err := exec.Command(built(t, "../bin/clawos-policy"), "compile", "--arch", archName, "--baseline", "start", "-o", bpf, wlFile).CombinedOutput(); err != nil {
		t.Fatalf("clawos-policy compile --arch %s: %v %s", archName, err, out)
	}
	copyIn(bpf, "vmtest/cross.bpf", 0o644)
	// clawos-run, static: the embedded runtime needs no runc program.
	staticRun := filepath.Join(dir, "clawos-run")
	goBuild("build", "-buildmode=pie", "-tags", "seccomp,netgo,osusergo",
		"-ldflags", `-linkmode external -extldflags "-static-pie"`, "-o", staticRun, "../cmd/clawos-run")
	copyIn(staticRun, "clawos-run", 0o755)
	// clawos-policy beside it, static too: it validates what the plan
	// cache does not hold.
	staticPolicy := filepath.Join(dir, "clawos-policy")
	goBuild("build", "-buildmode=pie", "-tags", "seccomp,netgo,osusergo",
		"-ldflags", `-linkmode external -extldflags "-static-pie"`, "-o", staticPolicy, "../cmd/clawos-policy")
	copyIn(staticPolicy, "clawos-policy", 0o755)
	testBin := filepath.Join(dir, "test.test")
	if native {
		goBuild("test", "-c", "-tags", "seccomp", "-o", testBin, ".")
		withLibs(testBin, "vmtest/test/test.test")
	} else {
		goBuild("test", "-c", "-tags", "seccomp,netgo,osusergo", "-ldflags", `-linkmode external -extldflags "-static"`, "-o", testBin, ".")
		copyIn(testBin, "vmtest/test/test.test", 0o755)
	}

	if archName == "x86_64" {
		// noia32's kernel (bookworm-backports) has nf_tables as modules:
		// the ones the port policy needs, in load order, for make demo's
		// reference whitelist (its port rules) under that kernel.
		order := moduleClosure(t, "../.cache/vm/backports/modules", "nf_tables", "nft_ct", "nft_reject_inet")
		for _, m := range order {
			copyIn(filepath.Join("../.cache/vm/backports/modules", m+".ko"), "modules/"+m+".ko", 0o644)
		}
		writeIn("modules/order", []byte(strings.Join(order, "\n")+"\n"), 0o644)
		copyIn("../examples/ironclaw.whitelist.json", "vmtest/demo/ironclaw.whitelist.json", 0o644)
		withLibs(built(t, "../bin/clawos-demo"), "clawos-demo")
	}
	if native {
		copyIn("/etc/apparmor.d/abi/3.0", "etc/apparmor.d/abi/3.0", 0o644)
		parser, err := exec.LookPath("apparmor_parser")
		if err != nil {
			t.Fatal("apparmor_parser is missing: .ci/setup installs it")
		}
		withLibs(parser, "sbin/apparmor_parser")
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
		writeIn("profiles/probe.aa", []byte(text), 0o644)
	}
	for dst, b := range extra {
		writeIn(dst, b, 0o644)
	}
	initrd := filepath.Join(dir, "initrd.cpio")
	cpio := exec.Command("sh", "-c", "find . | cpio -o -H newc --quiet > "+initrd)
	cpio.Dir = root
	if out, err := cpio.CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, out)
	}
	return initrd
}

// A kernel module's modinfo fields, NUL-terminated in its .modinfo section.
var (
	modDepends = regexp.MustCompile(`depends=([^\x00]*)\x00`)
	modSoftdep = regexp.MustCompile(`softdep=pre: ([^\x00]*)\x00`)
)

// moduleClosure is the load order of the kernel modules named and of what
// they need first (each .ko's modinfo "depends=" and "softdep=pre:"; the
// "crc32c" that libcrc32c asks for is crc32c_generic), from dir.
func moduleClosure(t *testing.T, dir string, names ...string) []string {
	var order []string
	seen := map[string]bool{}
	alias := map[string]string{"crc32c": "crc32c_generic"}
	var add func(name string)
	add = func(name string) {
		name = strings.ReplaceAll(name, "-", "_")
		if a, ok := alias[name]; ok {
			name = a
		}
		if seen[name] {
			return
		}
		seen[name] = true
		b, err := os.ReadFile(filepath.Join(dir, name+".ko"))
		if err != nil {
			t.Fatalf("kernel module %s: %v (make vm-kernel)", name, err)
		}
		if m := modSoftdep.FindSubmatch(b); m != nil {
			for _, d := range strings.Fields(string(m[1])) {
				add(d)
			}
		}
		if m := modDepends.FindSubmatch(b); m != nil {
			for _, d := range strings.Split(string(m[1]), ",") {
				if d != "" {
					add(d)
				}
			}
		}
		order = append(order, name)
	}
	for _, n := range names {
		add(n)
	}
	return order
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
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
	// The probe's ready waits with ppoll where the architecture has no
	// pause (aarch64).
	rules = append(rules, map[string]any{"name": "ppoll", "permission": "ALLOW"})
	wl["syscalls"] = rules
	b, err := json.Marshal(wl)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bootVM boots kernel with initrd and the command line, and returns the
// "CLAWOS <key...> <value>" results, the console and the time it took.
func bootVM(t *testing.T, arch vmArch, kernel, initrd, cmdline string) (map[string]string, string, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	args := append(append([]string{}, arch.qemu[1:]...), "-m", "1536", "-nographic", "-no-reboot",
		"-kernel", kernel, "-initrd", initrd, "-append", "console="+arch.console+" panic=-1 quiet "+cmdline)
	qemu := exec.CommandContext(ctx, arch.qemu[0], args...)
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
