package test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/internal/killlog"
	"github.com/clawos/clawos-security/internal/platform"
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
	// BPF are exported BPF program files loaded in this order (the
	// container stage, then the agent stage, as the runtime and
	// clawos-init do); none loads no filter.
	BPF  []string  `json:"bpf"`
	Nr   int       `json:"nr"`
	Args [6]uint64 `json:"args"`
	Via  string    `json:"via"`
	// Result is a file the child maps shared before loading the filter:
	// it marks that it is about to make the call, then stores the call's
	// errno and marks it made, all without a system call. The exit status
	// alone cannot tell an errno from a crash of the Go runtime (status 2
	// is also ENOENT).
	Result string `json:"result"`
}

// Marks in the result file's first word.
const (
	markArmed = 0x636c61776f736131 // about to load the filter and call
	markDone  = 0x636c61776f736132 // the call returned; its errno follows
)

// child loads the filter, makes one call and exits with its errno, which it
// also reports through the shared result file.
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
	rf, err := os.OpenFile(spec.Result, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return exitHarness
	}
	mem, err := unix.Mmap(int(rf.Fd()), 0, resultSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: map the result file:", err)
		return exitHarness
	}
	words := (*[2]uint64)(unsafe.Pointer(&mem[0]))
	var progs []*seccomp.Program
	for _, f := range spec.BPF {
		b, err := os.ReadFile(f)
		var prog *seccomp.Program
		if err == nil {
			prog, err = seccomp.ParseProgram(b)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return exitHarness
		}
		progs = append(progs, prog)
	}
	// Where ia32 calls are refused, int 0x80 raises SIGSEGV: the child must
	// die of it (not of the Go runtime's crash, exit status 2), before any
	// filter that might not allow rt_sigaction is loaded.
	if spec.Via == viaInt80 {
		if err := platform.DefaultSIGSEGV(); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			return exitHarness
		}
	}
	atomic.StoreUint64(&words[0], markArmed)
	for _, prog := range progs {
		if err := prog.Load(); err != nil {
			fmt.Fprintln(os.Stderr, "child: load:", err)
			return exitHarness
		}
	}
	a := spec.Args
	call := func() uintptr {
		switch spec.Via {
		case viaInt80:
			r := int32(platform.Int80(uint32(spec.Nr), uint32(a[0]), uint32(a[1]), uint32(a[2])))
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
	atomic.StoreUint64(&words[1], uint64(errno))
	atomic.StoreUint64(&words[0], markDone)
	unix.RawSyscall(unix.SYS_EXIT_GROUP, errno, 0, 0)
	return exitHarness // not reached
}

const resultSize = 4096

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

// runChild runs one call in a fresh child and returns the outcome: the
// call's errno (from the result file, which must agree with the exit
// status), or a seccomp kill (SIGSYS) after the child armed its call. Any
// other end is a failure of the harness, named, never a verdict: a crash
// in the filtered and the unfiltered run must not compare equal. The one
// exception is an i386 call on a kernel that refuses them (SIGSEGV with or
// without a filter; see platform.ClassifyIA32), returned as that signal.
func runChild(t *testing.T, spec childSpec) outcome {
	t.Helper()
	// A kill is the tested call's only if the kernel says so: between
	// loading the filter and the call, the Go runtime's other threads may
	// make a call of their own (more likely on a loaded machine or a slow
	// guest) that the filter kills. Such a run is a harness failure, run
	// again; a kill the kernel did not log (rate-limited) is taken as the
	// call's.
	for attempt := 1; ; attempt++ {
		start := time.Now()
		o, pid := runChildOnce(t, spec)
		if o == killed && spec.Via == viaInt80 && spec.BPF != nil && attempt < 3 && !ia32(t) {
			// A kernel that refuses i386 calls never shows one to
			// seccomp: a seccomp kill is another thread's call (seen in
			// the slow noia32 guest).
			t.Logf("attempt %d: the test child was killed by seccomp on a kernel without ia32 calls: the Go runtime's call, not its int 0x80; run again", attempt)
			continue
		}
		if o != killed || (spec.Via != viaSyscall && spec.Via != viaThread) {
			return o
		}
		arch := translate.NativeArch()
		name, found := killlog.Syscall(pid, start, arch, time.Second)
		if !found || name == arch.SyscallName(spec.Nr) || attempt == 3 {
			return o
		}
		t.Logf("attempt %d: the test child was killed for %s, not its call %s: the Go runtime's; run again", attempt, name, arch.SyscallName(spec.Nr))
	}
}

// runChildOnce is one run of runChild: the outcome and the child's pid.
func runChildOnce(t *testing.T, spec childSpec) (outcome, int) {
	t.Helper()
	rf, err := os.CreateTemp(t.TempDir(), "result")
	if err != nil {
		t.Fatal(err)
	}
	if err := rf.Truncate(resultSize); err != nil {
		t.Fatal(err)
	}
	rf.Close()
	spec.Result = rf.Name()
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
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run test child: %v", err)
	}
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	res, err := os.ReadFile(spec.Result)
	if err != nil || len(res) < 16 {
		t.Fatalf("read the test child's result: %v", err)
	}
	mark, errno := binary.NativeEndian.Uint64(res[0:]), binary.NativeEndian.Uint64(res[8:])
	switch {
	case ws.Signaled() && ws.Signal() == unix.SIGSYS && mark == markArmed:
		return killed, cmd.Process.Pid
	case ws.Signaled() && ws.Signal() == unix.SIGSEGV && spec.Via == viaInt80 && mark == markArmed:
		return outcome{Signal: unix.SIGSEGV}, cmd.Process.Pid
	case ws.Signaled():
		t.Fatalf("the test child died of %v (%s): a harness failure, not a verdict\nstderr: %s", ws.Signal(), markName(mark), stderr.String())
	case mark != markDone:
		t.Fatalf("the test child exited with status %d (%s): a harness failure, not a verdict\nstderr: %s", ws.ExitStatus(), markName(mark), stderr.String())
	case uint64(ws.ExitStatus()) != errno&0xff:
		t.Fatalf("the test child reported errno %d but exited with status %d\nstderr: %s", errno, ws.ExitStatus(), stderr.String())
	}
	return outcome{Errno: int(errno)}, cmd.Process.Pid
}

func markName(m uint64) string {
	switch m {
	case markArmed:
		return "after arming its call"
	case markDone:
		return "after its call"
	}
	return "before arming its call"
}

var ia32Once struct {
	sync.Once
	has bool
	err error
}

// ia32 reports whether this kernel delivers i386 system calls, from one
// unfiltered int 0x80 getpid in a test child (the probe of package
// platform, run through the harness).
func ia32(t *testing.T) bool {
	t.Helper()
	ia32Once.Do(func() {
		o := runChild(t, childSpec{Nr: 20, Via: viaInt80})
		ws := syscall.WaitStatus(0)
		if o.Signal != 0 {
			ws = syscall.WaitStatus(o.Signal)
		} else {
			ws = syscall.WaitStatus(o.Errno << 8)
		}
		ia32Once.has, ia32Once.err = platform.ClassifyIA32(ws)
	})
	if ia32Once.err != nil {
		t.Fatal(ia32Once.err)
	}
	return ia32Once.has
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

// bpfFile writes the exported BPF program of p for a child to load.
func bpfFile(t *testing.T, p *seccomp.Program) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "filter.bpf")
	if err := os.WriteFile(f, p.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// expectFromVerdict is what the kernel must do for an evaluator verdict;
// for ALLOW it is the outcome of the same call without a filter.
func expectFromVerdict(t *testing.T, v seccomp.Verdict, spec childSpec) outcome {
	t.Helper()
	switch v.Action() {
	case seccomp.RetAllow:
		spec.BPF = nil
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

// auditArchARM is AUDIT_ARCH_ARM: 32-bit ARM, aarch64's compat architecture.
const auditArchARM = 0x40000028
