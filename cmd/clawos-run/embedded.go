package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

// initCommand is the hidden subcommand libcontainer re-executes this binary
// with (/proc/self/exe init) to become the container's init.
const initCommand = "init"

func init() {
	if len(os.Args) > 1 && os.Args[1] == initCommand {
		// Runs after libcontainer/nsenter's C constructor has set up the
		// namespaces; it never returns.
		libcontainer.Init()
	}
}

// embeddedRuntime runs containers with runc's libcontainer inside this
// binary: no runc program, no runc processes.
type embeddedRuntime struct {
	root     string // libcontainer state
	stateDir string
	log      *logrus.Logger
}

func newEmbeddedRuntime(stateDir string, log *logrus.Logger) *embeddedRuntime {
	return &embeddedRuntime{root: filepath.Join(stateDir, "libcontainer"), stateDir: stateDir, log: log}
}

func (e *embeddedRuntime) writeBundle(dir string, sb *sandbox) error {
	o, err := self("embedded", e.root)
	if err != nil {
		return err
	}
	sb.owner = o
	return writeBundle(dir, sb)
}

func (e *embeddedRuntime) run(ctx context.Context, sb *sandbox, killAfter time.Duration, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cleanStale(ctx, e.stateDir, e.log)
	e.cleanOrphans()
	dir := sb.bundle
	release, err := sb.hold(e.stateDir)
	if err != nil {
		return 0, err
	}
	defer release()
	if err := e.writeBundle(dir, sb); err != nil {
		os.RemoveAll(dir)
		return 0, err
	}
	defer os.RemoveAll(dir)

	spec := *sb.spec
	root := *spec.Root
	if !filepath.IsAbs(root.Path) {
		root.Path = filepath.Join(dir, root.Path)
	}
	spec.Root = &root
	rootless := os.Geteuid() != 0
	config, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{
		CgroupName: sb.id, Spec: &spec, RootlessEUID: rootless, RootlessCgroups: rootless,
	})
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "libcontainer config")
	}
	c, err := libcontainer.Create(e.root, sb.id, config)
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "create container")
	}
	defer func() {
		if err := c.Destroy(); err != nil {
			e.log.WithError(err).Debug("destroy container")
		}
	}()
	pr, pw, err := launchPipe()
	if err != nil {
		return 0, err
	}
	defer pw.Close()
	// What runc's own newProcess takes from the spec's process and
	// specconv does not: the AppArmor profile and the rlimits (without
	// them the embedded runtime ran the agent unconfined by AppArmor and
	// with the caller's limits).
	rlimits, err := processRlimits(spec.Process.Rlimits)
	if err != nil {
		return 0, err
	}
	nnp := spec.Process.NoNewPrivileges
	p := &libcontainer.Process{
		Args: spec.Process.Args, Env: spec.Process.Env, Cwd: spec.Process.Cwd,
		UID: int(spec.Process.User.UID), GID: int(spec.Process.User.GID),
		AppArmorProfile: spec.Process.ApparmorProfile, Rlimits: rlimits, NoNewPrivileges: &nnp,
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		ExtraFiles: []*os.File{pr}, // fd 3 (launcherFD)
		Init:       true,
		LogLevel:   strconv.Itoa(int(logrus.WarnLevel)),
	}
	var consoleParent *os.File
	if spec.Process.Terminal {
		parent, child, err := socketPair()
		if err != nil {
			return 0, err
		}
		defer parent.Close()
		defer child.Close()
		p.Stdin, p.Stdout, p.Stderr, p.ConsoleSocket = nil, nil, nil, child
		consoleParent = parent
	}
	err = startLocked(func() error { return c.Start(p) })
	pr.Close()
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "start the container")
	}
	if consoleParent != nil {
		f, err := recvFile(consoleParent)
		if err == nil {
			term := &terminal{}
			if err = term.start(f, stdin, stdout); err == nil {
				defer term.close()
			}
		}
		if err != nil {
			p.Signal(unix.SIGKILL)
			p.Wait()
			return 0, err
		}
	}
	pid, err := p.Pid()
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "container pid")
	}
	agent := openAgent(pid)
	defer agent.close()
	stop, err := guard(ctx, agent, sb, killAfter, e.log)
	if err != nil {
		p.Signal(unix.SIGKILL)
		p.Wait()
		return 0, err
	}
	defer stop()
	if err := c.Exec(); err != nil {
		p.Signal(unix.SIGKILL)
		p.Wait()
		return 0, clawerr.Wrap(clawerr.EInternal, err, "start the agent")
	}
	sb.started(pid, pw)
	if sb.super != nil {
		if err := sb.super.start(pid); err != nil {
			p.Signal(unix.SIGKILL)
			p.Wait()
			return 0, err
		}
	}
	st, err := p.Wait()
	if st == nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "wait for the agent")
	}
	if sb.super != nil {
		if err := sb.super.wait(); err != nil {
			return 0, err
		}
	}
	return exitStatus(unix.WaitStatus(st.Sys().(syscall.WaitStatus)), pid, sb, e.log), nil
}

func socketPair() (*os.File, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, clawerr.Wrap(clawerr.EInternal, err, "console socket pair")
	}
	return os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child"), nil
}

// startLocked runs start (which forks the container's init) on an OS
// thread that lives as long as this process. The init's parent-death
// signal fires when the thread that forked it ends, and the Go runtime ends
// a thread whose locked goroutine returns (libcontainer locks threads for
// setns work): on an ordinary thread the agent could be killed while
// clawos-run still runs.
func startLocked(start func() error) error {
	res := make(chan error)
	go func() {
		goruntime.LockOSThread()
		res <- start()
		select {} // the thread stays until clawos-run exits
	}()
	return <-res
}

// cleanOrphans destroys containers in libcontainer's state whose bundle is
// gone (a clawos-run killed between removing its bundle and destroying its
// container).
func (e *embeddedRuntime) cleanOrphans() {
	states, _ := filepath.Glob(filepath.Join(e.root, "*"))
	for _, st := range states {
		id := filepath.Base(st)
		if _, err := os.Stat(bundleDir(e.stateDir, id)); !os.IsNotExist(err) {
			continue
		}
		if err := destroyEmbedded(e.root, id); err != nil {
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
