package sandbox

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// relay copies what the agent writes to a pipe onto the caller's terminal,
// which the agent never holds (withoutTerminal): this process copies it
// while it waits, and clawos-wait once it has taken over (HandOff:
// clawos-wait --relay). pause stops the copying between two reads, so that
// every byte read has been written and the rest is still in the pipe for
// the next reader.
type relay struct {
	from *os.File // the pipe's read end
	to   *os.File // the terminal
	done chan struct{}
	// pausing asks the copy to stop at its next read; eof says it ended
	// because every writer closed the pipe.
	pausing atomic.Bool
	eof     atomic.Bool
}

// newRelay makes the pipe of a relay onto to and returns the write end for
// the agent; start begins the copying.
func newRelay(to *os.File) (*relay, *os.File, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, clawerr.Wrap(clawerr.EIO, err, "pipe for the agent's output")
	}
	return &relay{from: r, to: to}, w, nil
}

// start (again) copies until end of file or pause.
func (r *relay) start() {
	r.done = make(chan struct{})
	r.pausing.Store(false)
	r.from.SetReadDeadline(time.Time{})
	go r.copy()
}

func (r *relay) copy() {
	defer close(r.done)
	buf := make([]byte, 64<<10)
	writable := true
	for {
		n, err := r.from.Read(buf)
		if n > 0 && writable {
			// A terminal that fails (hung up) is no longer written; the
			// pipe is still read, so that the agent never blocks on it.
			_, werr := r.to.Write(buf[:n])
			writable = werr == nil
		}
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded) && r.pausing.Load():
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			r.from.SetReadDeadline(time.Time{}) // a pause that was taken back
		default:
			r.eof.Store(true)
			return
		}
	}
}

// pause stops the copying once the read in progress, if any, has been
// written; what the pipe still holds stays there.
func (r *relay) pause() {
	r.pausing.Store(true)
	r.from.SetReadDeadline(time.Now())
	<-r.done
}

// dup duplicates the relay's descriptors for clawos-wait, without
// close-on-exec (the read end without switching it to blocking mode here:
// clawos-wait does that for its own reads).
func (r *relay) dup() (from, to int, err error) {
	rc, err := r.from.SyscallConn()
	if err != nil {
		return -1, -1, err
	}
	from = -1
	if cerr := rc.Control(func(fd uintptr) { from, err = unix.Dup(int(fd)) }); cerr != nil {
		return -1, -1, cerr
	}
	if err != nil {
		return -1, -1, err
	}
	if to, err = unix.Dup(int(r.to.Fd())); err != nil {
		unix.Close(from)
		return -1, -1, err
	}
	return from, to, nil
}

// wait waits for the end of the copying (every writer gone).
func (r *relay) wait() { <-r.done }

// close closes the pipe's read end.
func (r *relay) close() { r.from.Close() }
