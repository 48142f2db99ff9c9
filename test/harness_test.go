package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// childEnv carries a childSpec to the re-executed test binary.
const childEnv = "CLAWOS_TEST_SECCOMP_CHILD"

// Exit statuses of the child beyond errno values (which stay below 128 for
// every errno these tests expect).
const exitHarness = 200

func TestMain(m *testing.M) {
	if s := os.Getenv(childEnv); s != "" {
		os.Exit(child(s))
	}
	os.Exit(runTests(m))
}

// printkRatelimit is where the kernel rate-limits its log, seccomp kill
// reports included (about ten per five seconds without auditd).
const printkRatelimit = "/proc/sys/kernel/printk_ratelimit"

// runTests runs the tests; for the sandbox tests, which kill many agents in
// a few seconds and check that clawos-run names each killed syscall from the
// kernel log, the rate limit is off meanwhile and restored after.
func runTests(m *testing.M) int {
	if os.Getenv(integrationEnv) != "" && os.Geteuid() == 0 {
		if old, err := os.ReadFile(printkRatelimit); err == nil && os.WriteFile(printkRatelimit, []byte("0"), 0o644) == nil {
			defer os.WriteFile(printkRatelimit, old, 0o644)
		}
	}
	return m.Run()
}

// How the child makes its call.
const (
	viaSyscall = ""       // the syscall instruction, on the thread that loaded the filter
	viaThread  = "thread" // on another OS thread that existed before the filter was loaded
	viaInt80   = "int80"  // i386 int 0x80 (nr is an i386 number)
	viaX32     = "x32"    // syscall instruction with the x32 bit (0x40000000) set
)

type childSpec struct {
	Profile string    `json:"profile"` // OCI seccomp JSON file; "" loads no filter
	Nr      int       `json:"nr"`
	Args    [6]uint64 `json:"args"`
	Via     string    `json:"via"`
}

// child applies the profile, makes one call and exits with its errno.
func child(s string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(s), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return exitHarness
	}
	runtime.LockOSThread()
	var other chan func() uintptr
	var result chan uintptr
	if spec.Via == viaThread {
		other, result = make(chan func() uintptr), make(chan uintptr)
		started := make(chan int)
		go func() {
			runtime.LockOSThread()
			started <- unix.Gettid()
			for f := range other {
				result <- f()
			}
		}()
		if tid := <-started; tid == unix.Gettid() {
			fmt.Fprintln(os.Stderr, "child: helper thread is the main thread")
			return exitHarness
		}
	}
	if spec.Profile != "" {
		b, err := os.ReadFile(spec.Profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return exitHarness
		}
		var sec specs.LinuxSeccomp
		if err := json.Unmarshal(b, &sec); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return exitHarness
		}
		if err := seccomp.Apply(&sec); err != nil {
			fmt.Fprintln(os.Stderr, "child: apply:", err)
			return exitHarness
		}
	}
	a := spec.Args
	call := func() uintptr {
		switch spec.Via {
		case viaInt80:
			r := int32(int80(uint32(spec.Nr), uint32(a[0]), uint32(a[1]), uint32(a[2])))
			if r < 0 && r > -4096 {
				return uintptr(-r)
			}
			return 0
		case viaX32:
			_, _, e := unix.RawSyscall6(uintptr(spec.Nr)|0x40000000, uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
			return uintptr(e)
		}
		_, _, e := unix.RawSyscall6(uintptr(spec.Nr), uintptr(a[0]), uintptr(a[1]), uintptr(a[2]), uintptr(a[3]), uintptr(a[4]), uintptr(a[5]))
		return uintptr(e)
	}
	var errno uintptr
	if spec.Via == viaThread {
		other <- call
		errno = <-result
	} else {
		errno = call()
	}
	unix.RawSyscall(unix.SYS_EXIT_GROUP, errno, 0, 0)
	return exitHarness // not reached
}

// outcome is what the kernel did to the child.
type outcome struct {
	Signal syscall.Signal // non-zero: killed by this signal
	Errno  int            // exit status: the call's errno, 0 for success
}

func (o outcome) String() string {
	if o.Signal != 0 {
		return "killed by " + unix.SignalName(o.Signal)
	}
	if o.Errno == 0 {
		return "success"
	}
	return "errno " + unix.ErrnoName(syscall.Errno(o.Errno))
}

var killed = outcome{Signal: unix.SIGSYS}

func errnoOutcome(e int) outcome { return outcome{Errno: e} }

// runChild runs one call in a fresh child and returns the outcome.
func runChild(t *testing.T, spec childSpec) outcome {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b), "GOMAXPROCS=2")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return outcome{}
	case errors.As(err, &ee):
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return outcome{Signal: ws.Signal()}
		}
		if ws.ExitStatus() == exitHarness {
			t.Fatalf("test child failed: %s", stderr.String())
		}
		return outcome{Errno: ws.ExitStatus()}
	default:
		t.Fatalf("run test child: %v", err)
	}
	return outcome{}
}

// harnessCalls are what the Go runtime of the test child (and libseccomp's
// free after loading) may call between loading a filter and exit_group:
// sysmon's sleeps, futex wake-ups, preemption signals, memory management,
// and new threads (the binary links libseccomp, so glibc's pthread_create
// makes them with clone3, falling back to clone on ENOSYS, and each new
// thread registers rseq and its robust list first; measured with the
// kernel's type=1326 audit lines). They are added as ALLOW to a profile
// under test only when the profile has no rule of its own for them, and no
// test case calls a name the harness added; the evaluator sees the same
// profile, so the differential check stays exact.
var harnessCalls = []string{
	"brk", "clone", "clone3", "epoll_pwait", "epoll_wait", "exit", "exit_group", "futex", "getpid", "gettid",
	"madvise", "mmap", "mprotect", "munmap", "nanosleep", "clock_nanosleep", "rt_sigaction",
	"rt_sigprocmask", "rt_sigreturn", "rseq", "sched_yield", "set_robust_list", "sigaltstack", "tgkill", "write",
}

// withHarness returns a copy of s that also allows the harnessCalls that s
// has no rule for, and the set of names it added.
func withHarness(s *specs.LinuxSeccomp) (*specs.LinuxSeccomp, map[string]bool) {
	out := *s
	has := map[string]bool{}
	for _, c := range s.Syscalls {
		for _, n := range c.Names {
			has[n] = true
		}
	}
	var add []string
	added := map[string]bool{}
	for _, h := range harnessCalls {
		if !has[h] {
			add = append(add, h)
			added[h] = true
		}
	}
	out.Syscalls = append(append([]specs.LinuxSyscall{}, s.Syscalls...), specs.LinuxSyscall{Names: add, Action: specs.ActAllow})
	return &out, added
}

// profileFile writes an OCI seccomp section for a child to load.
func profileFile(t *testing.T, s *specs.LinuxSeccomp) string {
	t.Helper()
	b, err := translate.MarshalSeccomp(s)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "seccomp.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// expectFromVerdict is what the kernel must do for an evaluator verdict;
// for ALLOW it is the outcome of the same call without a filter.
func expectFromVerdict(t *testing.T, v seccomp.Verdict, spec childSpec) outcome {
	t.Helper()
	switch v.Action() {
	case seccomp.RetAllow:
		spec.Profile = ""
		return runChild(t, spec)
	case seccomp.RetErrno:
		return errnoOutcome(int(v.Data()))
	case seccomp.RetKillProcess, seccomp.RetKillThread:
		return killed
	}
	t.Fatalf("unexpected verdict %v", v)
	return outcome{}
}

// i386 and x32 inputs as seccomp sees them.
const auditArchI386 = 0x40000003
