package sandbox

import (
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// terminal is the host side of an agent's terminal (--tty). The runtime
// creates the pty inside the sandbox and sends its master over a unix
// socket; clawos-run copies between the master and its own stdio, with its
// own terminal in raw mode when it has one.
type terminal struct {
	master  console.Console
	host    console.Console // nil when stdin is not a terminal
	copied  sync.WaitGroup
	stopSig chan os.Signal
}

// recvFile receives one file descriptor sent with SCM_RIGHTS on conn.
func recvFile(conn *os.File) (*os.File, error) {
	name := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(conn.Fd()), name, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "receive the terminal")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, clawerr.New(clawerr.EProto, "the runtime sent no terminal")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, clawerr.New(clawerr.EProto, "the runtime sent no terminal")
	}
	return os.NewFile(uintptr(fds[0]), string(name[:n])), nil
}

// start takes the master, makes the host terminal raw and copies.
func (t *terminal) start(f *os.File, stdin io.Reader, stdout io.Writer) error {
	m, err := console.ConsoleFromFile(f)
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "terminal")
	}
	t.master = m
	if in, ok := stdin.(*os.File); ok {
		if host, err := console.ConsoleFromFile(in); err == nil {
			t.host = host
			if err := host.SetRaw(); err != nil {
				return clawerr.Wrap(clawerr.EIO, err, "raw terminal")
			}
			m.ResizeFrom(host)
			t.stopSig = make(chan os.Signal, 1)
			signal.Notify(t.stopSig, unix.SIGWINCH)
			go func() {
				for range t.stopSig {
					m.ResizeFrom(host)
				}
			}()
		}
	}
	go io.Copy(m, stdin)
	t.copied.Add(1)
	go func() {
		defer t.copied.Done()
		io.Copy(stdout, m) // ends with EIO when the agent's side closes
	}()
	return nil
}

// close waits (bounded) for the agent's last output and restores the host
// terminal.
func (t *terminal) close() {
	done := make(chan struct{})
	go func() { t.copied.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if t.stopSig != nil {
		signal.Stop(t.stopSig)
		close(t.stopSig)
	}
	if t.host != nil {
		t.host.Reset()
	}
	if t.master != nil {
		t.master.Close()
	}
}

// consoleListener is runc's --console-socket: a unix socket in the bundle.
func consoleListener(dir string) (*net.UnixListener, string, error) {
	path := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, "", clawerr.Wrap(clawerr.EIO, err, "console socket")
	}
	return l, path, nil
}

// acceptTerminal accepts the runtime's connection and receives the master.
func acceptTerminal(l *net.UnixListener) (*os.File, error) {
	l.SetDeadline(time.Now().Add(runcTimeout))
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "console socket")
	}
	defer c.Close()
	f, err := c.File()
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "console socket")
	}
	defer f.Close()
	return recvFile(f)
}

// isTerminal reports whether v is a file that is a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// plainWriter hides that a writer is a file, so that a runtime gives the
// agent a pipe that clawos-run copies to it instead of the file itself.
type plainWriter struct{ io.Writer }

// plainTerminal is withoutTerminal's copy for a runtime that makes the
// agent's pipe and copies it itself (plainWriter).
func plainTerminal(term *os.File) (io.Writer, error) { return plainWriter{term}, nil }

// withoutTerminal returns the standard streams of an agent without --tty:
// a terminal stdin becomes /dev/null, a terminal stdout or stderr what copyTo
// makes of it, a pipe that clawos-run copies to it (plainTerminal, or the
// sandbox's own relay). The agent then holds no descriptor of the caller's
// terminal, from which it could read what the user types to the shell
// afterwards (a terminal is usually open read-write on all three), even
// after clawos-run is gone. clawos-init also starts a new session, so
// /dev/tty does not reach it either. done closes /dev/null.
func withoutTerminal(stdin io.Reader, stdout, stderr io.Writer, copyTo func(term *os.File) (io.Writer, error)) (io.Reader, io.Writer, io.Writer, func(), error) {
	done := func() {}
	if isTerminal(stdin) {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return nil, nil, nil, nil, clawerr.Wrap(clawerr.EIO, err, "open /dev/null for the agent's stdin")
		}
		stdin, done = null, func() { null.Close() }
	}
	for _, out := range []*io.Writer{&stdout, &stderr} {
		if isTerminal(*out) {
			w, err := copyTo((*out).(*os.File))
			if err != nil {
				done()
				return nil, nil, nil, nil, err
			}
			*out = w
		}
	}
	return stdin, stdout, stderr, done, nil
}
