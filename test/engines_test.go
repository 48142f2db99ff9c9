package test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/internal/runcargs"
)

// engineFixture is what the engine tests share: a trusted whitelist
// directory (a signed whitelist, a tampered copy, an invalid one), the hook's
// state directory and audit log, and an image root filesystem (busybox and
// the probe, both static) as a tarball.
type engineFixture struct {
	dir, wlDir, stateDir, audit string
	hook, wrapper, init, probe  string
	rootfsTar                   string
}

func newEngineFixture(t testing.TB, tools ...string) *engineFixture {
	t.Helper()
	if os.Getenv(integrationEnv) == "" {
		t.Skipf("engine tests need root and the engines; set %s=1 (make test does) to run them", integrationEnv)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the engine tests run as root (CI does)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: .ci/setup installs it", tool)
		}
	}
	// Under /run/clawos-test (0755): a 0700 temporary directory would hide
	// the root filesystem from containers with user namespaces.
	// Short: podman refuses a runroot path longer than 50 characters.
	sum := sha256.Sum256([]byte(t.Name()))
	dir := filepath.Join("/run/clawos-test", "e-"+hex.EncodeToString(sum[:4]))
	removeUnder(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeUnder(dir) })
	f := &engineFixture{dir: dir, wlDir: filepath.Join(dir, "whitelists"), stateDir: filepath.Join(dir, "hook-state"),
		audit: filepath.Join(dir, "audit.jsonl"), hook: built(t, "../bin/clawos-hook"), wrapper: built(t, "../bin/clawos-runc"),
		init: built(t, "../bin/clawos-init"), probe: built(t, "../bin/clawos-probe")}
	if err := os.MkdirAll(f.wlDir, 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(probeWhitelist)
	if err != nil {
		t.Fatal(err)
	}
	// Tampered: a DENY turned into ALLOW after signing.
	tampered := bytes.Replace(raw, []byte(`"permission": "DENY"`), []byte(`"permission": "ALLOW"`), 1)
	if bytes.Equal(tampered, raw) {
		t.Fatal("the probe whitelist has no DENY rule to tamper with")
	}
	anysock, err := os.ReadFile(built(t, "testdata/anysocket.whitelist.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	delete(doc, "signature")
	unsigned, _ := json.Marshal(doc)
	for name, b := range map[string][]byte{"probe.json": raw, "anysocket.json": anysock, "tampered.json": tampered, "unsigned.json": unsigned,
		"invalid.json": []byte(`{"schema_version": "1.0.0", "syscalls": "all"}`)} {
		if err := os.WriteFile(filepath.Join(f.wlDir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A symlink out of the trusted directory.
	if err := os.Symlink(built(t, probeWhitelist), filepath.Join(f.wlDir, "escape.json")); err != nil {
		t.Fatal(err)
	}
	// A correctly signed whitelist that anyone could have rewritten.
	writable := filepath.Join(f.wlDir, "writable.json")
	if err := os.WriteFile(writable, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(writable, 0o666); err != nil {
		t.Fatal(err)
	}
	f.rootfsTar = filepath.Join(dir, "rootfs.tar")
	if err := writeRootfsTar(f.rootfsTar, map[string]string{"bin/busybox": "/bin/busybox", "clawos-probe": f.probe}); err != nil {
		t.Fatal(err)
	}
	return f
}

// config is the operator's configuration the tests use.
func (f *engineFixture) config() hook.Config {
	return hook.Config{WhitelistDir: f.wlDir, StateDir: f.stateDir, AuditLog: f.audit, Init: f.init, Hook: f.hook,
		RequireSignature: true}.WithDefaults(f.hook)
}

// wrapperWith is the fixture's wrapper in a directory of its own (name)
// with configuration c beside it (clawos-runc.json), as runc's name.
func (f *engineFixture) wrapperWith(t *testing.T, name string, c hook.Config) string {
	t.Helper()
	dir := filepath.Join(f.dir, name)
	os.MkdirAll(dir, 0o755)
	w := filepath.Join(dir, "clawos-runc")
	if err := os.Symlink(f.wrapper, w); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	b, _ := json.Marshal(c)
	if err := os.WriteFile(filepath.Join(dir, "clawos-runc.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return w
}

// hookArgs is clawos-hook's command line for a stage.
func (f *engineFixture) hookArgs(stage string) []string {
	return append(append([]string{"clawos-hook"}, f.config().Args()...), stage)
}

// rootfs unpacks the probe image's root filesystem for plain runc and
// returns its path.
func (f *engineFixture) rootfs(t *testing.T) string {
	t.Helper()
	rootfs := filepath.Join(f.dir, "rootfs")
	os.MkdirAll(rootfs, 0o755)
	if code, out := runCmd(t, nil, nil, "tar", "-C", rootfs, "-xf", f.rootfsTar); code != 0 {
		t.Fatalf("tar: %s", out)
	}
	return rootfs
}

// noState fails if the hook left anything in its state directory.
func (f *engineFixture) noState(t *testing.T) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(f.stateDir, "*"))
	if len(left) > 0 {
		t.Errorf("the hook left state behind: %v", left)
	}
}

// records reads the audit log.
func (f *engineFixture) records(t *testing.T) []hook.Record {
	t.Helper()
	b, err := os.ReadFile(f.audit)
	if err != nil {
		t.Fatalf("audit log: %v", err)
	}
	var out []hook.Record
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var r hook.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

// writeRootfsTar writes a root filesystem tarball: files (name in the
// image -> host file), /bin/sh a link to busybox, /tmp.
func writeRootfsTar(path string, files map[string]string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, d := range []string{"bin/", "tmp/", "proc/", "dev/", "sys/", "etc/"} {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: mode}); err != nil {
			return err
		}
	}
	for name, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(b))}); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox"}); err != nil {
		return err
	}
	return tw.Close()
}

// writeOCIArchive writes an OCI image layout archive of one layer (the
// rootfs tarball) whose command is cmd, named for containerd by
// io.containerd.image.name.
func writeOCIArchive(path, layerTar, name string, cmd []string) error {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	add := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	blob := func(b []byte) (string, int, error) {
		sum := sha256.Sum256(b)
		d := hex.EncodeToString(sum[:])
		return "sha256:" + d, len(b), add("blobs/sha256/"+d, b)
	}
	layer, err := os.ReadFile(layerTar)
	if err != nil {
		return err
	}
	diff := sha256.Sum256(layer)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	zw.Close()
	ld, ls, err := blob(gz.Bytes())
	if err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]any{"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": cmd},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diff[:])}}})
	cd, cs, err := blob(cfg)
	if err != nil {
		return err
	}
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": cs},
		"layers": []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ld, "size": ls}}})
	md, ms, err := blob(man)
	if err != nil {
		return err
	}
	idx, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": ms,
		"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": "test"}}}})
	if err := add("index.json", idx); err != nil {
		return err
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// engineRun runs a probe in a container of some engine: annotations (nil
// for none) and the probe's arguments; it returns the exit status and the
// engine's output.
type engineRun func(t *testing.T, annotations map[string]string, args ...string) (int, string)

// runCmd runs a command and returns its exit status and combined output.
func runCmd(t testing.TB, env []string, stdin []byte, name string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return exitOf(t, name, args, err, out)
}

// runDetached is runCmd for a command that leaves a process holding its
// output (runc create: the container's init keeps the standard streams
// until it runs): the output goes to a file, not a pipe to wait on.
func runDetached(t testing.TB, name string, args ...string) (int, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	out, _ := os.ReadFile(f.Name())
	return exitOf(t, name, args, err, out)
}

// exitOf is a finished command's exit status and output; a command that
// could not run fails the test.
func exitOf(t testing.TB, name string, args []string, err error, out []byte) (int, string) {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s %v: %v", name, args, err)
	return 0, ""
}

// checkEngine runs the shared cases on an engine: an annotated container is
// confined (DENY errno, kill of an unlisted call, refused port, Landlock,
// two filters), one without the annotation is untouched, and a missing,
// invalid, tampered or escaping whitelist stops the container with our
// message.
func checkEngine(t *testing.T, f *engineFixture, run engineRun) {
	const killed = 128 + int(unix.SIGSYS)
	ann := map[string]string{hook.AnnotationWhitelist: "probe"}
	for _, c := range []struct {
		name string
		ann  map[string]string
		args []string
		code int
	}{
		{"allowed getpid", ann, []string{"call", sysnr(t, "getpid")}, 0},
		{"DENY returns EPERM", ann, []string{"call", sysnr(t, "kill"), "1", "0"}, int(unix.EPERM)},
		{"DENY with ENOSYS", ann, []string{"call", sysnr(t, "clone3")}, int(unix.ENOSYS)},
		{"unlisted call kills the agent", ann, []string{"call", sysnr(t, "getuid")}, killed},
		{"escape: unshare", ann, []string{"call", sysnr(t, "unshare"), fmt.Sprint(unix.CLONE_NEWUSER)}, killed},
		{"allowed port", ann, []string{"listen-connect", "5432"}, 0},
		{"refused port", ann, []string{"listen-connect", "8080"}, refusedTCP()},
		{"Landlock: exec of another binary", ann, []string{"exec", "/bin/busybox"}, int(unix.EACCES)},
		// The port policy is default-deny for every protocol in the
		// engine's network namespace too (seccomp lets any socket through
		// under this whitelist).
		{"UDP-Lite refused by the port policy", map[string]string{hook.AnnotationWhitelist: "anysocket"}, []string{"dgram", "136", "4", "9999"}, int(unix.EPERM)},
		{"UDP to the allowed port", map[string]string{hook.AnnotationWhitelist: "anysocket"}, []string{"dgram", "17", "4", "5432"}, 0},
		// ICMP echo where the engine lets ping sockets be made (podman sets
		// net.ipv4.ping_group_range; elsewhere the socket itself is refused,
		// EACCES): never answered.
		{"ICMP echo refused", map[string]string{hook.AnnotationWhitelist: "anysocket"}, []string{"ping"}, -1},
		{"no annotation: untouched", nil, []string{"call", sysnr(t, "getuid")}, 0},
		{"no annotation: any port", nil, []string{"listen-connect", "8080"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := run(t, c.ann, c.args...)
			if c.code == -1 {
				// Refused at the socket (EACCES: no ping group) or by the
				// port policy (EPERM); an answer (0) is the failure.
				if code != int(unix.EPERM) && code != int(unix.EACCES) {
					t.Fatalf("exit %d, want EPERM or EACCES\n%s", code, out)
				}
				return
			}
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s", code, c.code, out)
			}
		})
	}
	t.Run("status", func(t *testing.T) {
		code, out := run(t, ann, "status")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		for _, want := range []string{"NoNewPrivs:\t1", "CapEff:\t0000000000000000", "Seccomp:\t2", "Seccomp_filters:\t2"} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
	})
	for _, c := range []struct{ name, wl, want string }{
		{"empty whitelist annotation", "", "the annotation names no whitelist"},
		{"world-writable whitelist", "writable", "is not trusted"},
		// One signature policy (runtime.json's require_signature) at every
		// entry point: podman's hooks read the same file as the wrapper.
		{"unsigned whitelist where signatures are required", "unsigned", "signature"},
		{"missing whitelist", "nope", `whitelist \"nope\" is not in the trusted directory`},
		{"tampered whitelist", "tampered", "signature does not match"},
		{"invalid whitelist", "invalid", "syscalls"},
		{"escaping whitelist", "escape", "resolves outside the trusted directory"},
		{"path out of the directory", "../probe", "is not a whitelist name"},
	} {
		t.Run("refused: "+c.name, func(t *testing.T) {
			code, out := run(t, map[string]string{hook.AnnotationWhitelist: c.wl}, "call", sysnr(t, "getpid"))
			if code == 0 {
				t.Fatalf("the container started:\n%s", out)
			}
			if !strings.Contains(strings.ReplaceAll(out, `\\"`, `\"`), c.want) && !strings.Contains(out, strings.ReplaceAll(c.want, `\"`, `"`)) {
				t.Errorf("the engine does not show our message %q:\n%s", c.want, out)
			}
		})
	}
	// The CRI pod-sandbox marker set by the container's creator: never a
	// way to run unconfined outside a CRI handler configured as one.
	t.Run("refused: sandbox marker with a whitelist", func(t *testing.T) {
		code, out := run(t, map[string]string{hook.AnnotationWhitelist: "probe", runcargs.AnnotationCRIContainerType: runcargs.CRISandbox},
			"call", sysnr(t, "getuid"))
		if code == 0 || code == 128+int(unix.SIGSYS) {
			t.Fatalf("the container ran (exit %d):\n%s", code, out)
		}
		if !strings.Contains(out, "pod-sandbox marker") {
			t.Errorf("the engine does not show our message:\n%s", out)
		}
	})
	// Every confined run left audit records: applied, allowed, cleaned,
	// and a killed agent's poststop names the syscall.
	seen := map[string]bool{}
	for _, r := range f.records(t) {
		stage := r.Stage
		if stage == "createRuntime" { // injected (runc alone, containerd); hooks.d's is prestart
			stage = "prestart"
		}
		seen[stage+":"+r.Decision] = true
		if r.KilledBy != "" {
			seen["killed:"+r.KilledBy] = true
		}
		if r.Decision == hook.DecisionAllowed && (r.Signature != "valid" || r.Digest == "" || r.ContainerID == "") {
			t.Errorf("incomplete audit record: %+v", r)
		}
		// Where the config is confined, the record says what became of
		// AppArmor: "unavailable" on a kernel without it (this VM).
		if r.Decision == hook.DecisionApplied && r.AppArmor != "applied" && r.AppArmor != "unavailable" {
			t.Errorf("audit record without the AppArmor state: %+v", r)
		}
	}
	// The seccomp kills ("unlisted call", "escape: unshare"): the engine
	// says "Bad system call" at most, poststop's record names the call.
	for _, want := range []string{"prestart:allowed", "poststop:cleaned", "killed:getuid", "killed:unshare"} {
		if !seen[want] {
			t.Errorf("no %s audit record: %v", want, seen)
		}
	}
	f.noState(t)
}

// TestHookRunc runs plain runc with a config made by clawos-hook precreate
// (the README's runc recipe): runc runs the injected prestart and poststop
// hooks. It also proves prestart's own checks: a config that lost its
// profile after precreate, or that shares the host's network namespace, is
// refused.
func TestHookRunc(t *testing.T) {
	f := newEngineFixture(t, "runc", "tar")
	rootfs := f.rootfs(t)
	runcRoot := filepath.Join(f.dir, "runc-root")
	n := 0
	baseSpec := func(ann map[string]string, args []string) *specs.Spec {
		s := specconv.Example()
		s.Root = &specs.Root{Path: rootfs, Readonly: true}
		s.Process.Terminal = false
		s.Process.Args = append([]string{"/clawos-probe"}, args...)
		// As podman asks by default: an exec would inherit no_new_privs,
		// which the hooks alone refuse (TestPodmanExec).
		s.Process.NoNewPrivileges = false
		s.Annotations = ann
		return s
	}
	// runBundle writes config (through precreate when annotated) and runs it.
	runBundle := func(t *testing.T, cfg []byte) (int, string) {
		n++
		bundle := filepath.Join(f.dir, fmt.Sprintf("bundle-%d", n))
		os.MkdirAll(bundle, 0o755)
		defer os.RemoveAll(bundle)
		if err := os.WriteFile(filepath.Join(bundle, "config.json"), cfg, 0o644); err != nil {
			t.Fatal(err)
		}
		return runCmd(t, nil, nil, "runc", "--root", runcRoot, "run", "--bundle", bundle, fmt.Sprintf("clawos-hook-test-%d", n))
	}
	precreate := func(t *testing.T, s *specs.Spec) (int, []byte, string) {
		raw, _ := json.Marshal(s)
		cmd := exec.Command(f.hook, f.hookArgs("precreate")[1:]...)
		cmd.Stdin = bytes.NewReader(raw)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code == 0 && s.Annotations == nil && !bytes.Equal(stdout.Bytes(), raw) {
			t.Errorf("precreate changed a config without the annotation")
		}
		return code, stdout.Bytes(), stderr.String()
	}
	checkEngine(t, f, func(t *testing.T, ann map[string]string, args ...string) (int, string) {
		code, cfg, stderr := precreate(t, baseSpec(ann, args))
		if code != 0 {
			return code, stderr
		}
		return runBundle(t, cfg)
	})

	ann := map[string]string{hook.AnnotationWhitelist: "probe"}
	confined := func(t *testing.T) *specs.Spec {
		code, cfg, stderr := precreate(t, baseSpec(ann, []string{"call", sysnr(t, "getpid")}))
		if code != 0 {
			t.Fatalf("precreate: %s", stderr)
		}
		var s specs.Spec
		if err := json.Unmarshal(cfg, &s); err != nil {
			t.Fatal(err)
		}
		return &s
	}
	for _, c := range []struct {
		name   string
		change func(s *specs.Spec)
		want   string
	}{
		{"agent filter replaced", func(s *specs.Spec) { s.Process.Args = s.Process.Args[3:] }, "does not carry the profile"},
		{"container filter removed", func(s *specs.Spec) { s.Linux.Seccomp = nil }, "has no seccomp filter"},
		{"host network", func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.NetworkNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		}, "cannot be enforced in the host's network namespace"},
		{"joins the host's network namespace", func(s *specs.Spec) {
			for i, n := range s.Linux.Namespaces {
				if n.Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", os.Getpid())
				}
			}
		}, "shares the host's network namespace"},
	} {
		t.Run("prestart refuses: "+c.name, func(t *testing.T) {
			s := confined(t)
			c.change(s)
			raw, _ := json.Marshal(s)
			code, out := runBundle(t, raw)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Fatalf("exit %d, want a refusal with %q:\n%s", code, c.want, out)
			}
		})
	}
	t.Run("precreate is idempotent", func(t *testing.T) {
		s := confined(t)
		once, _ := json.Marshal(s)
		// Its no_new_privs is the hook's own; an engine's request is the
		// one the exec guard judges (an exec inherits it).
		s.Process.NoNewPrivileges = false
		code, again, stderr := precreate(t, s)
		if code != 0 {
			t.Fatal(stderr)
		}
		var s2 specs.Spec
		json.Unmarshal(again, &s2)
		twice, _ := json.Marshal(&s2)
		if !bytes.Equal(once, twice) {
			t.Errorf("a second precreate changed the config:\n%s\n%s", once, twice)
		}
	})
	if code, out := runCmd(t, nil, nil, "runc", "--root", runcRoot, "list", "-q"); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("runc still lists containers: %s", out)
	}
	f.noState(t)
}

// TestHookPodman runs podman with the repository's hooks.d files (the
// precreate, prestart and poststop stages, matching the annotation).
// setupPodman writes hooks.d files (the repository's, with the fixture's
// paths), a containers.conf for this machine and private storage, and
// imports the probe image. podman is the global flags, hooks dir included.
func setupPodman(t testing.TB, f *engineFixture) (env, podman []string, hooksDir, image string) {
	hooksDir = filepath.Join(f.dir, "hooks.d")
	os.MkdirAll(hooksDir, 0o755)
	for _, stage := range []string{"precreate", "prestart", "poststop"} {
		name := "clawos-" + stage + ".json"
		raw, err := os.ReadFile(filepath.Join("../hook/hooks.d", name))
		if err != nil {
			t.Fatal(err)
		}
		var h map[string]any
		if err := json.Unmarshal(raw, &h); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The installed paths and default directories, replaced by the
		// test's.
		hk := h["hook"].(map[string]any)
		hk["path"] = f.hook
		var fileArgs []string
		for _, a := range hk["args"].([]any) {
			fileArgs = append(fileArgs, a.(string))
		}
		// The hooks read the same runtime.json as the wrapper.
		hk["args"] = append([]string{"clawos-hook", "--config", filepath.Join(f.dir, "runtime.json")}, fileArgs[1:]...)
		out, _ := json.Marshal(h)
		if err := os.WriteFile(filepath.Join(hooksDir, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rt, _ := json.Marshal(f.config())
	if err := os.WriteFile(filepath.Join(f.dir, "runtime.json"), rt, 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(f.dir, "containers.conf")
	os.WriteFile(conf, []byte(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
`), 0o644)
	env = []string{"CONTAINERS_CONF=" + conf}
	root, runroot := filepath.Join(f.dir, "storage"), filepath.Join(f.dir, "runroot")
	podman = []string{"--root", root, "--runroot", runroot, "--storage-driver", "overlay"}
	t.Cleanup(func() {
		runCmd(t, env, nil, "podman", append(podman, "rm", "-a", "-f")...)
		// conmon runs `podman container cleanup` on its own when a
		// container exits, and that podman mounts the storage's overlay
		// home again: wait for every process that names this storage
		// before unmounting it (one still starting left the mount behind,
		// failing every later test's mount check).
		waitNoProcessNaming(t, root, 10*time.Second)
		unix.Unmount(filepath.Join(root, "overlay"), unix.MNT_DETACH)
	})
	image = "localhost/clawos-probe:test"
	if code, out := runCmd(t, env, nil, "podman", append(podman, "import", f.rootfsTar, image)...); code != 0 {
		t.Fatalf("podman import: %s", out)
	}
	return env, podman, hooksDir, image
}

func TestHookPodman(t *testing.T) {
	f := newEngineFixture(t, "podman", "conmon")
	env, podman, hooksDir, image := setupPodman(t, f)
	podman = append(podman, "--hooks-dir", hooksDir)
	checkEngine(t, f, func(t *testing.T, ann map[string]string, args ...string) (int, string) {
		a := append([]string{}, podman...)
		a = append(a, "run", "--rm", "--network", "none")
		for k, v := range ann {
			a = append(a, "--annotation", k+"="+v)
		}
		a = append(append(a, image, "/clawos-probe"), args...)
		return runCmd(t, env, nil, "podman", a...)
	})
	// An unknown whitelist name: the first line podman prints says so, not
	// only "a command that was not found" (the prestart hook's reason; the
	// refused command's path carries it too, for a runtime that looks the
	// command up first or skips the hook).
	a := append(append([]string{}, podman...), "run", "--rm", "--network", "none", "--annotation", hook.AnnotationWhitelist+"=nope",
		image, "/clawos-probe", "status")
	code, out := runCmd(t, env, nil, "podman", a...)
	first, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	if code == 0 || !strings.Contains(strings.ReplaceAll(first, `\"`, `"`), `whitelist "nope" is not in the trusted directory`) {
		t.Errorf("an unknown whitelist: exit %d, first line %q, want it to name the whitelist:\n%s", code, first, out)
	}
	if code, out := runCmd(t, env, nil, "podman", append(podman, "ps", "-a", "-q")...); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("podman still lists containers: %s", out)
	}
}

// TestHookPodmanHostSettings runs podman with the hooks and the engine
// settings a confined container must not get: the host's pid, ipc or uts
// namespace is refused with our message; --privileged runs, but without
// the host's devices, capabilities or a writable /sys.
func TestHookPodmanHostSettings(t *testing.T) {
	f := newEngineFixture(t, "podman", "conmon")
	env, podman, hooksDir, image := setupPodman(t, f)
	podman = append(podman, "--hooks-dir", hooksDir)
	run := func(t *testing.T, flags []string, args ...string) (int, string) {
		a := append(append([]string{}, podman...), "run", "--rm", "--network", "none", "--annotation", hook.AnnotationWhitelist+"=probe")
		a = append(append(append(a, flags...), image, "/clawos-probe"), args...)
		return runCmd(t, env, nil, "podman", a...)
	}
	// podman asks for the host's namespace by leaving it out of the
	// config: the hook gives the container a namespace of its own instead
	// (namespaces.Harden), and the createRuntime check would refuse a
	// shared one. Compared by inode with this process's (the host's).
	t.Run("--pid=host --ipc=host --uts=host", func(t *testing.T) {
		code, out := run(t, []string{"--pid=host", "--ipc=host", "--uts=host"}, "ns")
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		for _, typ := range []string{"pid", "ipc", "uts", "mnt", "cgroup"} {
			var st unix.Stat_t
			if err := unix.Stat("/proc/self/ns/"+typ, &st); err != nil {
				t.Fatal(err)
			}
			if host := fmt.Sprintf("ns %s %d\n", typ, st.Ino); strings.Contains(out, host) || !strings.Contains(out, "ns "+typ+" ") {
				t.Errorf("the confined container is in the host's %s namespace (or did not say):\n%s", typ, out)
			}
		}
	})
	t.Run("--privileged", func(t *testing.T) {
		for _, dev := range []string{"/dev/loop0", "/dev/loop-control", "/dev/kmsg"} {
			if code, out := run(t, []string{"--privileged"}, "open", dev, "0"); code != int(unix.ENOENT) {
				t.Errorf("open %s: exit %d, want ENOENT (no such device node)\n%s", dev, code, out)
			}
		}
		code, out := run(t, []string{"--privileged"}, "status")
		for _, want := range []string{"CapEff:	0000000000000000", "Seccomp_filters:	2", "NoNewPrivs:	1"} {
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("privileged confined container: exit %d, lacks %q:\n%s", code, want, out)
			}
		}
	})
}

// containerd starts a private containerd (no CRI) and returns its socket.
func startContainerd(t testing.TB, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "containerd.sock")
	os.WriteFile(filepath.Join(dir, "containerd.toml"), []byte(fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
`, filepath.Join(dir, "containerd-root"), filepath.Join(dir, "containerd-state"), sock)), 0o644)
	startContainerdConfig(t, dir, sock)
	return sock
}

// TestHookContainerd runs containerd's runc shim with clawos-runc as its
// runc binary (ctr run --runc-binary, as a RuntimeClass's BinaryName does).
// setupCtr starts a private containerd, puts clawos-runc with its
// configuration in a directory of its own and imports the probe image; ctr
// is ctr's global flags.
func setupCtr(t testing.TB, f *engineFixture) (ctr []string, wrapper, image string) {
	sock := startContainerd(t, f.dir)
	// The wrapper reads clawos-runc.json next to the path it is called by.
	wrapDir := filepath.Join(f.dir, "wrapper")
	os.MkdirAll(wrapDir, 0o755)
	wrapper = filepath.Join(wrapDir, "clawos-runc")
	if err := os.Symlink(f.wrapper, wrapper); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(f.config())
	os.WriteFile(filepath.Join(wrapDir, "clawos-runc.json"), cfg, 0o644)
	archive := filepath.Join(f.dir, "probe-oci.tar")
	image = "localhost/clawos-probe:test"
	if err := writeOCIArchive(archive, f.rootfsTar, image, []string{"/clawos-probe", "status"}); err != nil {
		t.Fatal(err)
	}
	const namespace = "engine-test"
	ctr = []string{"-a", sock, "-n", namespace}
	// containerd keeps a parent cgroup per namespace (/NAMESPACE/ID for its
	// containers) after they are gone: not the hook's, but removed here so
	// that the machine is left as found.
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*/" + namespace)
		for _, d := range append(dirs, "/sys/fs/cgroup/"+namespace) {
			unix.Rmdir(d)
		}
	})
	if code, out := runCmd(t, nil, nil, "ctr", append(ctr, "images", "import", archive)...); code != 0 {
		t.Fatalf("ctr images import: %s", out)
	}
	return ctr, wrapper, image
}

func TestHookContainerd(t *testing.T) {
	f := newEngineFixture(t, "containerd", "ctr", "runc")
	ctr, wrapper, image := setupCtr(t, f)
	n := 0
	checkEngine(t, f, func(t *testing.T, ann map[string]string, args ...string) (int, string) {
		n++
		a := append(append([]string{}, ctr...), "run", "--rm", "--runc-binary", wrapper)
		for k, v := range ann {
			a = append(a, "--annotation", k+"="+v)
		}
		a = append(append(a, image, fmt.Sprintf("clawos-%d", n), "/clawos-probe"), args...)
		code, out := runCmd(t, nil, nil, "ctr", a...)
		if code != 0 && strings.Contains(out, "OCI runtime create failed") {
			// ctr leaves the container record of a failed create.
			runCmd(t, nil, nil, "ctr", append(append([]string{}, ctr...), "containers", "rm", fmt.Sprintf("clawos-%d", n))...)
		}
		return code, out
	})
	// An exec that runc's init fails (a working directory that does not
	// exist) is recorded as failed, after runc returned, never as applied.
	t.Run("failed exec recorded as failed", func(t *testing.T) {
		a := append(append([]string{}, ctr...), "run", "-d", "--runc-binary", wrapper, "--annotation", hook.AnnotationWhitelist+"=probe",
			image, "clawos-exec-fail", "/clawos-probe", "ready")
		if code, out := runCmd(t, nil, nil, "ctr", a...); code != 0 {
			t.Fatalf("ctr run -d: %s", out)
		}
		defer func() {
			runCmd(t, nil, nil, "ctr", append(append([]string{}, ctr...), "task", "kill", "-s", "SIGKILL", "clawos-exec-fail")...)
			for i := 0; i < 100; i++ {
				if code, _ := runCmd(t, nil, nil, "ctr", append(append([]string{}, ctr...), "task", "delete", "clawos-exec-fail")...); code == 0 {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			runCmd(t, nil, nil, "ctr", append(append([]string{}, ctr...), "containers", "rm", "clawos-exec-fail")...)
		}()
		code, out := runCmd(t, nil, nil, "ctr", append(append([]string{}, ctr...), "task", "exec", "--exec-id", "bad", "--cwd", "/nonexistent",
			"clawos-exec-fail", "/clawos-probe", "status")...)
		if code == 0 {
			t.Fatalf("the exec with a missing working directory succeeded:\n%s", out)
		}
		failed, applied := 0, 0
		for _, r := range f.records(t) {
			if r.Stage == "exec" && r.ContainerID == "clawos-exec-fail" {
				switch r.Decision {
				case hook.DecisionFailed:
					failed++
				case hook.DecisionApplied:
					applied++
				}
			}
		}
		if failed != 1 || applied != 0 {
			t.Errorf("exec records: %d failed, %d applied; want 1 failed", failed, applied)
		}
	})
	if code, out := runCmd(t, nil, nil, "ctr", append(ctr, "containers", "ls", "-q")...); code != 0 || strings.TrimSpace(out) != "" {
		t.Errorf("containerd still lists containers: %s", out)
	}
}

// TestWrapperRuncForms calls clawos-runc exactly as runc would be called,
// with every form runc's parser accepts for the flags that name the bundle:
// one dash or two, "=value" or the next argument, the flag after the
// container id. Each annotated container must run confined (an unlisted
// call kills it: 159), never passed to runc unconfined (exit 0); an unknown
// flag is refused with our message before runc runs.
func TestWrapperRuncForms(t *testing.T) {
	f := newEngineFixture(t, "runc", "tar")
	rootfs := f.rootfs(t)
	wrapper := f.wrapperWith(t, "wrapper-forms", f.config())
	root := filepath.Join(f.dir, "runc-forms")
	n := 0
	for _, form := range []func(bundle, id string) []string{
		func(b, id string) []string { return []string{"run", "--bundle", b, id} },
		func(b, id string) []string { return []string{"run", "-bundle", b, id} },
		func(b, id string) []string { return []string{"run", "-bundle=" + b, id} },
		func(b, id string) []string { return []string{"run", "--bundle=" + b, id} },
		func(b, id string) []string { return []string{"run", "-b", b, id} },
		func(b, id string) []string { return []string{"run", id, "-bundle", b} },
		func(b, id string) []string { return []string{"-log-format", "json", "run", "-bundle", b, id} },
	} {
		n++
		bundle := filepath.Join(f.dir, fmt.Sprintf("forms-%d", n))
		os.MkdirAll(bundle, 0o755)
		s := specconv.Example()
		s.Root = &specs.Root{Path: rootfs, Readonly: true}
		s.Process.Terminal = false
		s.Process.Args = []string{"/clawos-probe", "call", sysnr(t, "getuid")}
		s.Annotations = map[string]string{hook.AnnotationWhitelist: "probe"}
		raw, _ := json.Marshal(s)
		os.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o644)
		args := append([]string{"--root", root}, form(bundle, fmt.Sprintf("clawos-forms-%d", n))...)
		t.Run(strings.Join(args[2:], " "), func(t *testing.T) {
			code, out := runCmd(t, nil, nil, wrapper, args...)
			if code != 128+int(unix.SIGSYS) {
				t.Errorf("exit %d, want the seccomp kill of a confined container (159)\n%s", code, out)
			}
		})
		runCmd(t, nil, nil, "runc", "--root", root, "delete", "-f", fmt.Sprintf("clawos-forms-%d", n))
	}
	t.Run("unknown flag refused", func(t *testing.T) {
		code, out := runCmd(t, nil, nil, wrapper, "--root", root, "run", "--bogus", "-bundle", filepath.Join(f.dir, "forms-1"), "clawos-forms-x")
		if code == 0 || code == 128+int(unix.SIGSYS) || !strings.Contains(out, "is not a runc run flag or command the ClawOS wrapper knows") {
			t.Errorf("exit %d\n%s", code, out)
		}
	})
	// A create with --pid-file (containerd's shim): the wrapper does the
	// createRuntime stage itself once runc's create returns, runc runs no
	// clawos-hook for it; start runs the agent confined, and the stop's
	// poststop names the kill.
	bundle := filepath.Join(f.dir, "forms-1")
	t.Run("create --pid-file, start", func(t *testing.T) {
		id := "clawos-forms-pidfile"
		defer runCmd(t, nil, nil, "runc", "--root", root, "delete", "-f", id)
		if code, out := runDetached(t, wrapper, "--root", root, "create", "--bundle", bundle, "--pid-file", filepath.Join(bundle, "init.pid"), id); code != 0 {
			t.Fatalf("create: exit %d\n%s", code, out)
		}
		var spec specs.Spec
		if err := json.Unmarshal(mustRead(t, filepath.Join(bundle, "config.json")), &spec); err != nil {
			t.Fatal(err)
		}
		if spec.Hooks == nil || len(spec.Hooks.CreateRuntime) != 0 || len(spec.Hooks.Poststop) != 1 {
			t.Errorf("the config's hooks: %+v, want poststop only", spec.Hooks)
		}
		if _, err := os.Stat(filepath.Join(f.stateDir, id+".json")); err != nil {
			t.Errorf("no state record after the create: %v", err)
		}
		if code, out := runCmd(t, nil, nil, wrapper, "--root", root, "start", id); code != 0 {
			t.Fatalf("start: exit %d\n%s", code, out)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			_, out := runCmd(t, nil, nil, "runc", "--root", root, "state", id)
			if strings.Contains(out, `"status": "stopped"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the agent did not stop: %s", out)
			}
			time.Sleep(20 * time.Millisecond)
		}
		runCmd(t, nil, nil, wrapper, "--root", root, "delete", id)
		var created, killed bool
		for _, r := range f.records(t) {
			created = created || (r.ContainerID == id && r.Stage == "createRuntime" && r.Decision == hook.DecisionAllowed)
			killed = killed || (r.ContainerID == id && r.Stage == "poststop" && r.KilledBy == "getuid")
		}
		if !created || !killed {
			t.Errorf("audit: createRuntime allowed %v, poststop naming getuid %v", created, killed)
		}
	})
	// The create is refused after runc made the container, whose process
	// has not started: the wrapper's createRuntime stage fails (its state
	// directory cannot be made; the refusal is audited), or its audit log
	// cannot be written (an unaudited create is refused). Either way no
	// container stays.
	for _, c := range []struct {
		name, id string
		broken   func(*hook.Config)
		say      string // in the create's output ("" for any refusal)
		audited  bool   // a createRuntime refusal in the fixture's audit log
	}{
		{"stage refused", "clawos-forms-refused", func(c *hook.Config) { c.StateDir = filepath.Join(bundle, "config.json", "state") }, "state directory", true},
		{"audit log unwritable", "clawos-forms-unaudited", func(c *hook.Config) { c.AuditLog = filepath.Join(bundle, "config.json", "audit.jsonl") }, "", false},
	} {
		t.Run("create --pid-file, "+c.name, func(t *testing.T) {
			cfg := f.config()
			c.broken(&cfg) // a path under a file
			w := f.wrapperWith(t, "wrapper-"+c.id, cfg)
			defer runCmd(t, nil, nil, "runc", "--root", root, "delete", "-f", c.id)
			code, out := runDetached(t, w, "--root", root, "create", "--bundle", bundle, "--pid-file", filepath.Join(bundle, "init.pid"), c.id)
			if code == 0 || !strings.Contains(out, c.say) {
				t.Errorf("create: exit %d, want a refusal saying %q\n%s", code, c.say, out)
			}
			if _, out := runCmd(t, nil, nil, "runc", "--root", root, "state", c.id); !strings.Contains(out, "does not exist") {
				t.Errorf("the refused container is still there: %s", out)
			}
			if !c.audited {
				return
			}
			refused := false
			for _, r := range f.records(t) {
				refused = refused || (r.ContainerID == c.id && r.Stage == "createRuntime" && r.Decision == hook.DecisionRefused)
			}
			if !refused {
				t.Error("no createRuntime refusal in the audit log")
			}
		})
	}
}

// TestWrapperJoinedNetns checks the wrapper's create into a network
// namespace that exists before the container (a pod's, joined by path):
// the port rules go in while runc creates the container, as a table of the
// container's own, and are there before its start; they are gone again
// after its stop, after a create that runc fails, and after a create the
// wrapper refuses once runc has made the container.
func TestWrapperJoinedNetns(t *testing.T) {
	f := newEngineFixture(t, "runc", "tar", "ip", "nsenter", "nft")
	rootfs := f.rootfs(t)
	root := filepath.Join(f.dir, "runc-joined")
	const netns = "clawos-test-joined"
	runCmd(t, nil, nil, "ip", "netns", "del", netns)
	if code, out := runCmd(t, nil, nil, "ip", "netns", "add", netns); code != 0 {
		t.Fatalf("ip netns add: %s", out)
	}
	t.Cleanup(func() { runCmd(t, nil, nil, "ip", "netns", "del", netns) })
	tables := func(t *testing.T) string {
		code, out := runCmd(t, nil, nil, "nsenter", "--net=/run/netns/"+netns, "nft", "list", "tables")
		if code != 0 {
			t.Fatalf("nft list tables: %s", out)
		}
		return out
	}
	bundle := func(t *testing.T, name string, edit func(*specs.Spec)) string {
		b := filepath.Join(f.dir, name)
		os.MkdirAll(b, 0o755)
		s := specconv.Example()
		s.Root = &specs.Root{Path: rootfs, Readonly: true}
		s.Process.Terminal = false
		s.Process.Args = []string{"/clawos-probe", "listen-connect", "8080"}
		s.Annotations = map[string]string{hook.AnnotationWhitelist: "probe"}
		for i, n := range s.Linux.Namespaces {
			if n.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = "/run/netns/" + netns
			}
		}
		if edit != nil {
			edit(s)
		}
		raw, _ := json.Marshal(s)
		os.WriteFile(filepath.Join(b, "config.json"), raw, 0o644)
		return b
	}
	create := func(t *testing.T, w, b, id string) (int, string) {
		t.Helper()
		return runDetached(t, w, "--root", root, "create", "--bundle", b, "--pid-file", filepath.Join(b, "init.pid"), id)
	}
	gone := func(t *testing.T, id string) {
		t.Helper()
		if out := tables(t); strings.Contains(out, "clawos") {
			t.Errorf("the namespace still has a port table:\n%s", out)
		}
		if _, out := runCmd(t, nil, nil, "runc", "--root", root, "state", id); !strings.Contains(out, "does not exist") {
			t.Errorf("the container is still there: %s", out)
		}
	}
	wrapper := f.wrapperWith(t, "wrapper-joined", f.config())
	t.Run("created: rules in before the start, removed at the stop", func(t *testing.T) {
		id := "clawos-joined-ok"
		defer runCmd(t, nil, nil, "runc", "--root", root, "delete", "-f", id)
		b := bundle(t, "joined-ok", nil)
		if code, out := create(t, wrapper, b, id); code != 0 {
			t.Fatalf("create: exit %d\n%s", code, out)
		}
		if out := tables(t); !strings.Contains(out, "table inet clawos-"+id) {
			t.Fatalf("no port table of the container before its start:\n%s", out)
		}
		if code, out := runCmd(t, nil, nil, wrapper, "--root", root, "start", id); code != 0 {
			t.Fatalf("start: exit %d\n%s", code, out)
		}
		for deadline := time.Now().Add(30 * time.Second); ; {
			if _, out := runCmd(t, nil, nil, "runc", "--root", root, "state", id); strings.Contains(out, `"status": "stopped"`) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the agent did not stop")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if code, out := runCmd(t, nil, nil, wrapper, "--root", root, "delete", id); code != 0 {
			t.Fatalf("delete: exit %d\n%s", code, out)
		}
		gone(t, id)
	})
	t.Run("runc's create fails: no rules left", func(t *testing.T) {
		id := "clawos-joined-failed"
		defer runCmd(t, nil, nil, "runc", "--root", root, "delete", "-f", id)
		b := bundle(t, "joined-failed", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: filepath.Join(f.dir, "no-such-source"), Options: []string{"bind"}})
		})
		if code, out := create(t, wrapper, b, id); code == 0 {
			t.Fatalf("create of a bundle runc cannot make: exit 0\n%s", out)
		}
		gone(t, id)
	})
	t.Run("refused after runc made it: no rules left", func(t *testing.T) {
		id := "clawos-joined-refused"
		defer runCmd(t, nil, nil, "runc", "--root", root, "delete", "-f", id)
		cfg := f.config()
		b := bundle(t, "joined-refused", nil)
		cfg.StateDir = filepath.Join(b, "config.json", "state") // a path under a file
		if code, out := create(t, f.wrapperWith(t, "wrapper-joined-refused", cfg), b, id); code == 0 || !strings.Contains(out, "state directory") {
			t.Fatalf("create: exit %d, want the state directory's refusal\n%s", code, out)
		}
		gone(t, id)
	})
}

// TestPodmanExec checks `podman exec` into a confined container with
// podman's default ulimits, under both setups. With the hooks alone (no
// hook runs for an exec, so it cannot be confined) an exec never starts the
// program, and a container into which one would start (no_new_privileges)
// is refused at its run with the reason. With the wrapper as podman's
// runtime (deploy/podman/containers.conf) an exec runs under the agent's
// exact filter: two filters, an unlisted call killed, a DENY's errno.
func TestPodmanExec(t *testing.T) {
	f := newEngineFixture(t, "podman", "conmon")
	env, podman, hooksDir, image := setupPodman(t, f)
	// podman's defaults (no default_ulimits), and the shipped runtime entry
	// with the fixture's wrapper.
	wrapDir := filepath.Join(f.dir, "wrapper")
	os.MkdirAll(wrapDir, 0o755)
	wrapper := filepath.Join(wrapDir, "clawos-runc")
	if err := os.Symlink(f.wrapper, wrapper); err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(f.config())
	os.WriteFile(filepath.Join(wrapDir, "clawos-runc.json"), cfg, 0o644)
	shipped := strings.ReplaceAll(string(mustRead(t, "../deploy/podman/containers.conf")), "/usr/local/bin/clawos-runc", wrapper)
	conf := map[string]string{
		"hooks":   "[engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
		"wrapper": strings.Replace(shipped, "[engine]\n", "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n", 1),
	}
	for _, setup := range []string{"hooks", "wrapper"} {
		t.Run(setup, func(t *testing.T) {
			path := filepath.Join(f.dir, setup+".conf")
			if err := os.WriteFile(path, []byte(conf[setup]), 0o644); err != nil {
				t.Fatal(err)
			}
			env := append(append([]string{}, env...), "CONTAINERS_CONF="+path)
			p := append([]string{}, podman...)
			if setup == "hooks" {
				p = append(p, "--hooks-dir", hooksDir)
			}
			pm := func(args ...string) (int, string) {
				return runCmd(t, env, nil, "podman", append(append([]string{}, p...), args...)...)
			}
			// Removed with this setup's configuration: setupPodman's own
			// cleanup does not know the wrapper's runtime entry, and a
			// container it cannot stop would outlive the test.
			t.Cleanup(func() { pm("rm", "-a", "-f", "-t", "0") })
			for _, nnp := range []bool{false, true} {
				name := fmt.Sprintf("exec-%s-%v", setup, nnp)
				args := []string{"run", "-d", "--name", name, "--network", "none", "--annotation", hook.AnnotationWhitelist + "=probe"}
				if nnp {
					args = append(args, "--security-opt", "no-new-privileges")
				}
				code, out := pm(append(args, image, "/clawos-probe", "ready")...)
				if setup == "hooks" && nnp {
					if code == 0 || !strings.Contains(out, "an exec into this container would run under the container-level filter only") {
						t.Errorf("hooks, no-new-privileges: run: exit %d, want the refusal\n%s", code, out)
					}
					continue
				}
				if code != 0 {
					t.Fatalf("run %s: %d %s", name, code, out)
				}
				status, out := pm("exec", name, "/clawos-probe", "status")
				if setup == "hooks" {
					if status == 0 || strings.Contains(out, "pid ") {
						t.Errorf("hooks: an exec started (exit %d):\n%s", status, out)
					}
					continue
				}
				if status != 0 || !regexp.MustCompile(`(?m)^Seccomp_filters:\s+2$`).MatchString(out) || !regexp.MustCompile(`(?m)^NoNewPrivs:\s+1$`).MatchString(out) {
					t.Errorf("wrapper, nnp %v: exec status: exit %d, want two filters and no_new_privs:\n%s", nnp, status, out)
				}
				if code, out := pm("exec", name, "/clawos-probe", "call", sysnr(t, "getuid")); code != 128+int(unix.SIGSYS) {
					t.Errorf("wrapper, nnp %v: exec of an unlisted call: exit %d, want 159\n%s", nnp, code, out)
				}
				if code, out := pm("exec", name, "/clawos-probe", "call", sysnr(t, "kill"), "1", "0"); code != int(unix.EPERM) {
					t.Errorf("wrapper, nnp %v: exec of a DENY: exit %d, want EPERM\n%s", nnp, code, out)
				}
			}
		})
	}
}

// removeUnder removes dir, detaching first what is mounted under it:
// podman's overlay driver leaves its storage directory mounted on itself,
// which os.RemoveAll cannot remove and later cleanup checks find.
// waitNoProcessNaming waits, at most d, until no process but this one has
// s in its command line.
func waitNoProcessNaming(t testing.TB, s string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		var found []string
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			if cmd, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && bytes.Contains(cmd, []byte(s)) {
				found = append(found, strings.ReplaceAll(string(cmd), "\x00", " "))
			}
		}
		if len(found) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes still use %s: %v", s, found)
			return
		}
	}
}

func removeUnder(dir string) {
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	var points []string
	for _, l := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(l); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	// The deepest first.
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		unix.Unmount(p, unix.MNT_DETACH)
	}
	os.RemoveAll(dir)
}
