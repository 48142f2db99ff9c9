package main

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
	root     string // runc --root
	stateDir string
	log      *logrus.Logger
}

func newRuncRuntime(name, stateDir string, log *logrus.Logger) (*runcRuntime, error) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("OCI runtime %q not found", name), Err: err,
			Hint: "install runc (Debian: apt-get install runc) or pass --runtime PATH"}
	}
	return &runcRuntime{bin: bin, root: filepath.Join(stateDir, "runc"), stateDir: stateDir, log: log}, nil
}

func (r *runcRuntime) runc(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, runcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.bin, append([]string{"--root", r.root}, args...)...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, fmt.Errorf("%w: %s", err, bytes.TrimSpace(out)), "runc "+args[0])
	}
	return nil
}

// run starts the sandbox and waits for the agent. It returns the agent's
// exit status, 128+N if it died of signal N.
func (r *runcRuntime) run(ctx context.Context, sb *sandbox, killAfter time.Duration, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	cleanStale(ctx, r.stateDir, r.log)
	dir := sb.bundle
	release, err := sb.hold(r.stateDir)
	if err != nil {
		return 0, err
	}
	defer release()
	if err := r.writeBundle(dir, sb); err != nil {
		os.RemoveAll(dir)
		return 0, err
	}
	defer func() {
		if err := r.runc(context.Background(), "delete", "--force", sb.id); err != nil {
			r.log.WithError(err).Debug("runc delete")
		}
		os.RemoveAll(dir)
	}()

	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "become child subreaper")
	}
	streams, err := newStdio(stdin, stdout, stderr)
	if err != nil {
		return 0, err
	}
	defer streams.close()

	pr, pw, err := launchPipe()
	if err != nil {
		return 0, err
	}
	defer pw.Close()
	pidFile := filepath.Join(dir, "agent.pid")
	args := []string{"--root", r.root, "create", "--bundle", dir, "--pid-file", pidFile, "--preserve-fds", "1"}
	var master chan fileOrErr
	if sb.spec.Process.Terminal {
		l, path, err := consoleListener(dir)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		args = append(args, "--console-socket", path)
		master = make(chan fileOrErr, 1)
		go func() { f, err := acceptTerminal(l); master <- fileOrErr{f, err} }()
	}
	create := exec.Command(r.bin, append(args, sb.id)...)
	create.Stdin, create.Stdout, create.Stderr = streams.in, streams.out, streams.err
	create.ExtraFiles = []*os.File{pr} // fd 3 (launcherFD)
	err = create.Run()
	pr.Close()
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EInternal, err, "runc create (its error is above)")
	}
	streams.started()
	if master != nil {
		m := <-master
		if m.err != nil {
			r.runc(context.Background(), "delete", "--force", sb.id)
			return 0, m.err
		}
		term := &terminal{}
		if err := term.start(m.f, stdin, stdout); err != nil {
			r.runc(context.Background(), "delete", "--force", sb.id)
			return 0, err
		}
		defer term.close()
	}
	pid, err := readPid(pidFile)
	if err != nil {
		return 0, err
	}
	// runc create has exited: its init is our child now (child subreaper),
	// so its pid cannot be reused before we reap it.
	agent := openAgent(pid)
	defer agent.close()
	stop, err := guard(ctx, agent, sb, killAfter, r.log)
	if err != nil {
		agent.signal(unix.SIGKILL)
		return 0, err
	}
	defer stop()
	if err := r.runc(ctx, "start", sb.id); err != nil {
		agent.signal(unix.SIGKILL)
		return 0, err
	}
	sb.started(pid, pw)
	if sb.super != nil {
		if err := sb.super.start(pid); err != nil {
			agent.signal(unix.SIGKILL)
			agent.wait()
			return 0, err
		}
	}
	ws, err := agent.wait()
	if err != nil {
		return 0, err
	}
	if sb.super != nil {
		if err := sb.super.wait(); err != nil {
			return 0, err
		}
	}
	streams.wait()
	return exitStatus(ws, pid, sb, r.log), nil
}

func (r *runcRuntime) writeBundle(dir string, sb *sandbox) error {
	o, err := self(r.bin, r.root)
	if err != nil {
		return err
	}
	sb.owner = o
	return writeBundle(dir, sb)
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
	r := &runcRuntime{bin: bin, root: root}
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
