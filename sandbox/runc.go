package sandbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// runcTimeout bounds every runc command but the agent's own run.
const runcTimeout = 30 * time.Second

type runcRuntime struct {
	bin      string // runc binary
	state    string // runc --root
	stateDir string
	log      logrus.FieldLogger
}

func newRuncRuntime(name, stateDir string, log logrus.FieldLogger) (*runcRuntime, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("OCI runtime %q not found", name), Err: err,
			Hint: "install runc (Debian: apt-get install runc) or pass --runtime PATH"}
	}
	return &runcRuntime{bin: bin, state: filepath.Join(stateDir, "runc"), stateDir: stateDir, log: log}, nil
}

func (r *runcRuntime) Name() string                   { return r.bin }
func (r *runcRuntime) root() string                   { return r.state }
func (r *runcRuntime) cleanStale(ctx context.Context) { cleanStale(ctx, r.stateDir, r.log) }

func (r *runcRuntime) runc(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, runcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"--root", r.state}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, fmt.Errorf("%w: %s", err, bytes.TrimSpace(out)), "runc "+args[0])
	}
	return nil
}

// runcContainer is a container runc created: its init is this process's
// child (a child subreaper adopts it when runc create exits).
type runcContainer struct {
	r       *runcRuntime
	id      string
	agent   *agentProc
	streams *stdio
}

// create runs runc create. The one process-wide setting of the package is
// made here: this process becomes a child subreaper
// (PR_SET_CHILD_SUBREAPER), so that the container's init, orphaned when
// runc create exits, is its child to wait for, as containerd's shim does.
func (r *runcRuntime) create(ctx context.Context, s *Sandbox, stdio Stdio, launcher *os.File) (container, error) {
	dir, id := s.plan.Bundle, s.plan.ID
	rc := &runcContainer{r: r, id: id}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "become child subreaper")
	}
	streams, err := newStdio(stdio.In, stdio.Out, stdio.Err)
	if err != nil {
		return nil, err
	}
	rc.streams = streams
	s.onDestroy(streams.close)
	pidFile := filepath.Join(dir, "agent.pid")
	args := []string{"--root", r.state, "create", "--bundle", dir, "--pid-file", pidFile, "--preserve-fds", "1"}
	var master chan fileOrErr
	if s.spec.Process.Terminal {
		l, path, err := consoleListener(dir)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		args = append(args, "--console-socket", path)
		master = make(chan fileOrErr, 1)
		go func() { f, err := acceptTerminal(l); master <- fileOrErr{f, err} }()
	}
	create := exec.Command(r.bin, append(args, id)...)
	create.Stdin, create.Stdout, create.Stderr = streams.in, streams.out, streams.err
	create.ExtraFiles = []*os.File{launcher} // fd 3 (launcherFD)
	err = create.Run()
	// From here on runc may have state for the container: destroy deletes
	// it.
	if err != nil {
		rc.destroy()
		return nil, clawerr.Wrap(clawerr.EInternal, err, "runc create (its error is above)")
	}
	streams.started()
	if master != nil {
		m := <-master
		if m.err != nil {
			rc.destroy()
			return nil, m.err
		}
		term := &terminal{}
		if err := term.start(m.f, stdio.In, stdio.Out); err != nil {
			rc.destroy()
			return nil, err
		}
		s.onDestroy(term.close)
	}
	pid, err := readPid(pidFile)
	if err != nil {
		rc.destroy()
		return nil, err
	}
	// runc create has exited: its init is our child now (child subreaper),
	// so its pid cannot be reused before we reap it.
	rc.agent = openAgent(pid)
	return rc, nil
}

func (rc *runcContainer) pid() int { return rc.agent.pid }

func (rc *runcContainer) start(ctx context.Context) error { return rc.r.runc(ctx, "start", rc.id) }

func (rc *runcContainer) wait() (unix.WaitStatus, error) {
	ws, err := rc.agent.wait()
	if err != nil {
		return 0, err
	}
	rc.streams.wait()
	return ws, nil
}

func (rc *runcContainer) kill() {
	rc.agent.signal(unix.SIGKILL)
	rc.agent.wait()
}

func (rc *runcContainer) destroy() {
	if err := rc.r.runc(context.Background(), "delete", "--force", rc.id); err != nil {
		rc.r.log.WithError(err).Debug("runc delete")
	}
	if rc.agent != nil {
		rc.agent.close()
	}
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "read agent pid")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "agent pid")
	}
	return pid, nil
}

// destroyRunc stops and deletes container id with the runc-compatible
// program bin and state root it was created with. A container runc no
// longer knows is not an error; one it cannot delete is.
func destroyRunc(ctx context.Context, bin, root, id string) error {
	r := &runcRuntime{bin: bin, state: root, log: logrus.New()}
	err := r.runc(ctx, "delete", "--force", id)
	if err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, runcTimeout)
	defer cancel()
	out, serr := exec.CommandContext(ctx, bin, "--root", root, "state", id).CombinedOutput()
	if serr != nil && bytes.Contains(out, []byte("does not exist")) {
		return nil
	}
	return err
}

// stdio gives runc real file descriptors. A stream that is not an *os.File
// goes through a pipe copied here; otherwise runc create's own wait would
// last until the agent closes its output.
type stdio struct {
	in, out, err *os.File
	closers      []*os.File // our ends, closed at the end
	childEnds    []*os.File // the child's ends, closed once runc has them
	wg           sync.WaitGroup
}

func newStdio(stdin io.Reader, stdout, stderr io.Writer) (*stdio, error) {
	s := &stdio{}
	var err error
	if f, ok := stdin.(*os.File); ok {
		s.in = f
	} else {
		var w *os.File
		if s.in, w, err = os.Pipe(); err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "stdin pipe")
		}
		s.childEnds = append(s.childEnds, s.in)
		go func() { io.Copy(w, stdin); w.Close() }()
	}
	out := func(dst io.Writer) (*os.File, error) {
		if f, ok := dst.(*os.File); ok {
			return f, nil
		}
		r, w, err := os.Pipe()
		if err != nil {
			return nil, clawerr.Wrap(clawerr.EInternal, err, "output pipe")
		}
		s.childEnds = append(s.childEnds, w)
		s.closers = append(s.closers, r)
		s.wg.Add(1)
		go func() { defer s.wg.Done(); io.Copy(dst, r) }()
		return w, nil
	}
	if s.out, err = out(stdout); err != nil {
		return nil, err
	}
	if s.err, err = out(stderr); err != nil {
		return nil, err
	}
	return s, nil
}

// started closes the child's ends once runc create has passed them on.
func (s *stdio) started() {
	for _, f := range s.childEnds {
		f.Close()
	}
	s.childEnds = nil
}

// wait waits for the copies of the agent's output to finish.
func (s *stdio) wait() { s.wg.Wait() }

func (s *stdio) close() {
	s.started()
	for _, f := range s.closers {
		f.Close()
	}
}
