package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	_ "github.com/opencontainers/cgroups/devices" // device rules in cgroups, as runc's main registers them
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // the C half of libcontainer's init
	"github.com/opencontainers/runc/libcontainer/specconv"
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
	return writeBundle(dir, sb)
}

func (e *embeddedRuntime) run(ctx context.Context, sb *sandbox, killAfter time.Duration, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	e.cleanStale()
	dir := sb.bundle
	if err := writeBundle(dir, sb); err != nil {
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
	p := &libcontainer.Process{
		Args: spec.Process.Args, Env: spec.Process.Env, Cwd: spec.Process.Cwd,
		UID: int(spec.Process.User.UID), GID: int(spec.Process.User.GID),
		Stdin: stdin, Stdout: stdout, Stderr: stderr,
		Init:     true,
		LogLevel: strconv.Itoa(int(logrus.WarnLevel)),
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
	if err := c.Start(p); err != nil {
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
	stop, err := guard(ctx, pid, sb, killAfter, e.log)
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

// cleanStale destroys containers whose clawos-run is gone: those of stale
// bundles, and any container in libcontainer's state whose bundle is gone.
func (e *embeddedRuntime) cleanStale() {
	stale := staleBundles(e.stateDir)
	states, _ := filepath.Glob(filepath.Join(e.root, "*"))
	for _, st := range states {
		d := bundleDir(e.stateDir, filepath.Base(st))
		if _, err := os.Stat(d); os.IsNotExist(err) {
			stale = append(stale, d)
		}
	}
	for _, d := range stale {
		id := filepath.Base(d)
		e.log.WithField("id", id).Info("removing a sandbox whose clawos-run is gone")
		c, err := libcontainer.Load(e.root, id)
		if err != nil {
			e.log.WithError(err).Warn("load a stale container")
			os.RemoveAll(d)
			continue
		}
		c.Signal(unix.SIGKILL)
		// Destroy refuses a container that is still running: wait, bounded,
		// for the killed init to go.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if st, err := c.Status(); err != nil || st == libcontainer.Stopped {
				break
			}
		}
		if err := c.Destroy(); err != nil {
			e.log.WithError(err).Warn("destroy a stale container")
		}
		os.RemoveAll(d)
	}
}
