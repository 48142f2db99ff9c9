package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"syscall"
	"time"

	_ "github.com/opencontainers/cgroups/devices" // device rules in cgroups, as runc's main registers them
	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/configs"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of libcontainer's init
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// InitCommand is the hidden subcommand libcontainer re-executes the
// program with (/proc/self/exe init) to become the container's init.
const InitCommand = "init"

// Reexec runs libcontainer's init and never returns when this process is
// one (os.Args[1] == InitCommand); otherwise it returns at once. A program
// that uses the embedded runtime calls it first thing in main, or in an
// init function of package main.
func Reexec() {
	if len(os.Args) > 1 && os.Args[1] == InitCommand {
		// Runs after libcontainer/nsenter's C constructor has set up the
		// namespaces; it never returns.
		libcontainer.Init()
	}
}

// embeddedRuntime runs containers with runc's libcontainer inside this
// binary: no runc program, no runc processes.
type embeddedRuntime struct {
	state    string // libcontainer state
	stateDir string
	log      logrus.FieldLogger
}

func newEmbeddedRuntime(stateDir string, log logrus.FieldLogger) *embeddedRuntime {
	return &embeddedRuntime{state: filepath.Join(stateDir, "libcontainer"), stateDir: stateDir, log: log}
}

func (e *embeddedRuntime) Name() string { return "embedded" }
func (e *embeddedRuntime) root() string { return e.state }

func (e *embeddedRuntime) cleanStale(ctx context.Context) {
	cleanStale(ctx, e.stateDir, e.log)
	e.cleanOrphans()
}

// embeddedContainer is a libcontainer container and its init process.
type embeddedContainer struct {
	c       *libcontainer.Container
	p       *libcontainer.Process
	initPID int
	log     logrus.FieldLogger
}

func (e *embeddedRuntime) create(ctx context.Context, s *Sandbox, stdio Stdio, launcher *os.File) (container, error) {
	spec := *s.spec
	root := *spec.Root
	if !filepath.IsAbs(root.Path) {
		root.Path = filepath.Join(s.plan.Bundle, root.Path)
	}
	spec.Root = &root
	if s.plan.initLoadsContainer && spec.Linux != nil {
		// clawos-init loads the container stage (--container-filter).
		linux := *spec.Linux
		linux.Seccomp = nil
		spec.Linux = &linux
	}
	rootless := os.Geteuid() != 0
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: s.plan.ID, Spec: &spec, RootlessEUID: rootless, RootlessCgroups: rootless,
	})
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "libcontainer config")
	}
	c, err := libcontainer.Create(e.state, s.plan.ID, config)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "create container")
	}
	ec := &embeddedContainer{c: c, log: e.log}
	// What runc's own newProcess takes from the spec's process and
	// specconv does not: the AppArmor profile and the rlimits (without
	// them the embedded runtime ran the agent unconfined by AppArmor and
	// with the caller's limits).
	rlimits, err := processRlimits(spec.Process.Rlimits)
	if err != nil {
		ec.destroy()
		return nil, err
	}
	nnp := spec.Process.NoNewPrivileges
	p := &libcontainer.Process{
		Args: spec.Process.Args, Env: spec.Process.Env, Cwd: spec.Process.Cwd,
		UID: int(spec.Process.User.UID), GID: int(spec.Process.User.GID),
		AppArmorProfile: spec.Process.ApparmorProfile, Rlimits: rlimits, NoNewPrivileges: &nnp,
		Stdin: stdio.In, Stdout: stdio.Out, Stderr: stdio.Err,
		ExtraFiles: []*os.File{launcher}, // fd 3 (launcherFD)
		Init:       true,
		LogLevel:   strconv.Itoa(int(logrus.WarnLevel)),
	}
	ec.p = p
	var consoleParent *os.File
	if spec.Process.Terminal {
		parent, child, err := socketPair()
		if err != nil {
			ec.destroy()
			return nil, err
		}
		defer parent.Close()
		defer child.Close()
		p.Stdin, p.Stdout, p.Stderr, p.ConsoleSocket = nil, nil, nil, child
		consoleParent = parent
	}
	start := func() error { return c.Start(p) }
	if s.privateRoot {
		root, create := filepath.Join(s.plan.Bundle, "rootfs"), start
		start = func() error { return onPrivateRoot(root, func() error { return s.writeRoot(root) }, create) }
	}
	if err := s.thread.do(start); err != nil {
		ec.destroy()
		return nil, clawerr.Wrap(clawerr.EInternal, err, "start the container")
	}
	if consoleParent != nil {
		f, err := recvFile(consoleParent)
		if err == nil {
			term := &terminal{}
			if err = term.start(f, stdio.In, stdio.Out); err == nil {
				s.onDestroy(term.close)
			}
		}
		if err != nil {
			ec.kill()
			ec.destroy()
			return nil, err
		}
	}
	if ec.initPID, err = p.Pid(); err != nil {
		ec.kill()
		ec.destroy()
		return nil, clawerr.Wrap(clawerr.EInternal, err, "container pid")
	}
	return ec, nil
}

func (ec *embeddedContainer) pid() int { return ec.initPID }

func (ec *embeddedContainer) start(context.Context) error {
	if err := ec.c.Exec(); err != nil {
		return errNotStarted(err)
	}
	return nil
}

func (ec *embeddedContainer) wait() (unix.WaitStatus, error) {
	st, err := ec.p.Wait()
	if st == nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "wait for the agent")
	}
	return unix.WaitStatus(st.Sys().(syscall.WaitStatus)), nil
}

func (ec *embeddedContainer) kill() {
	ec.p.Signal(unix.SIGKILL)
	ec.p.Wait()
}

func (ec *embeddedContainer) destroy() {
	if err := ec.c.Destroy(); err != nil {
		ec.log.WithError(err).Debug("destroy container")
	}
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, clawerr.Wrap(clawerr.EInternal, err, "console socket pair")
	}
	return os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child"), nil
}

// osThread is the sandbox's launcher thread: an OS thread that lives until
// the sandbox is destroyed. The container's init and pasta are forked from
// it: their parent-death signal fires when the thread that forked them
// ends, and the Go runtime ends a thread whose locked goroutine returns
// (libcontainer locks threads for its setns work), so on an ordinary
// thread the agent could be killed while clawos-run still runs. HandOff
// execs clawos-wait on it: an exec keeps the calling thread, and its
// children with their parent, and ends the others.
type osThread struct{ work chan func() }

func newOSThread() *osThread {
	t := &osThread{work: make(chan func())}
	go func() {
		goruntime.LockOSThread()
		for f := range t.work {
			f()
		}
		// Returning while locked ends the thread: Destroy has removed
		// everything forked from it.
	}()
	return t
}

// do runs f on the thread.
func (t *osThread) do(f func() error) error {
	res := make(chan error, 1)
	t.work <- func() { res <- f() }
	return <-res
}

// end lets the thread go.
func (t *osThread) end() { close(t.work) }

// cleanOrphans destroys containers in libcontainer's state whose bundle is
// gone (a clawos-run killed between removing its bundle and destroying its
// container).
func (e *embeddedRuntime) cleanOrphans() {
	states, _ := filepath.Glob(filepath.Join(e.state, "*"))
	for _, st := range states {
		id := filepath.Base(st)
		if _, err := os.Stat(bundleDir(e.stateDir, id)); !os.IsNotExist(err) {
			continue
		}
		if err := destroyEmbedded(e.state, id); err != nil {
			e.log.WithError(err).WithField("id", id).Warn("an orphaned container could not be confirmed stopped")
		}
	}
}

// destroyEmbedded stops and destroys a container of libcontainer's state
// root; it fails, leaving the state, when the container is not confirmed
// stopped. A container that has no state is not an error.
func destroyEmbedded(root, id string) error {
	c, err := libcontainer.Load(root, id)
	if errors.Is(err, libcontainer.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c.Signal(unix.SIGKILL)
	// Destroy refuses a container that is still running: wait, bounded,
	// for the killed init to go.
	stopped := false
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if st, err := c.Status(); err == nil && st == libcontainer.Stopped {
			stopped = true
			break
		}
	}
	if !stopped {
		return fmt.Errorf("container %s does not stop", id)
	}
	return c.Destroy()
}

// rlimitTypes maps the OCI names of rlimits to the kernel's.
var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// processRlimits converts the spec's rlimits for libcontainer; an unknown
// one is refused, never dropped.
func processRlimits(rl []specs.POSIXRlimit) ([]configs.Rlimit, error) {
	var out []configs.Rlimit
	for _, r := range rl {
		t, ok := rlimitTypes[r.Type]
		if !ok {
			return nil, clawerr.New(clawerr.EProto, "unknown rlimit "+r.Type)
		}
		out = append(out, configs.Rlimit{Type: t, Hard: r.Hard, Soft: r.Soft})
	}
	return out, nil
}
