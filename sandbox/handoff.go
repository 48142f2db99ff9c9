package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
)

// WaiterName is the small static program a launcher becomes while a
// long-running agent runs (HandOff), installed next to clawos-run.
const WaiterName = "clawos-wait"

// DefaultHandOffAfter is how long an agent runs before clawos-run hands
// its waiting to clawos-wait: a command that ends sooner is waited for
// in-process, which costs less than two more execs.
const DefaultHandOffAfter = 200 * time.Millisecond

// FindWaiter is the path of clawos-wait next to this executable.
func FindWaiter() (string, error) { return findProgram(WaiterName) }

// HandOff is how Supervise hands a running sandbox to clawos-wait: once the
// agent has run for After, this process execs Waiter, a static program of
// a few hundred kilobytes, on the thread that forked the sandbox's init
// (the init's parent-death signal stays armed: the same process, the same
// thread, the same pid). clawos-wait forwards signals as Supervise does,
// reaps the init, and execs this binary again with Args, the hand-off's
// state and the wait status appended; that program's main passes what
// follows Args to FinishHandOff, which cleans up as Destroy does and
// returns the agent's status.
type HandOff struct {
	Waiter string
	Args   []string
	After  time.Duration
}

// handedOff is the state the cleaning program needs, passed through
// clawos-wait as one argument (nothing secret: ids, paths, pids).
type handedOff struct {
	StateDir string `json:"state_dir"`
	ID       string `json:"id"`
	InitPID  int    `json:"init_pid"`
	exitInfo
	KillAfter time.Duration `json:"kill_after"`
	// NetFD and UserFD hold the sandbox's namespaces for the port
	// policy's counters, -1 without a policy.
	NetFD    int  `json:"net_fd"`
	UserFD   int  `json:"user_fd"`
	Complain bool `json:"complain,omitempty"`
}

// errNoHandOff says why a sandbox is waited for in-process.
var errNoHandOff = errors.New("no hand-off")

// handOffBlocker says why s cannot be handed to clawos-wait, "" if it can:
// whatever still needs this process while the agent runs keeps it.
func (s *Sandbox) handOffBlocker() string {
	p := s.plan
	switch {
	case s.thread == nil:
		return "no launcher thread"
	case s.agent == nil || s.agent.pidfd < 0:
		return "no pidfd for the sandbox's init"
	case !s.inProcess:
		return "runtime " + s.rt.Name() + " (its processes are not this one's children)"
	case p.cfg.TTY:
		return "--tty (the terminal is copied by this process)"
	case p.obs != nil:
		return "learn or complain (the supervisor answers the agent's calls)"
	}
	for _, f := range []any{s.stdio.In, s.stdio.Out, s.stdio.Err} {
		if _, ok := f.(*os.File); !ok && f != nil {
			return "a stream that is not a file (copied by this process)"
		}
	}
	return ""
}

// exited reports on the returned channel when the sandbox's init has
// exited (its pidfd is readable); it is not reaped.
func (a *agentProc) exited() <-chan struct{} {
	c := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(a.pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
		close(c)
	}()
	return c
}

// handOff execs clawos-wait in place of this process; it returns only when
// it did not (then nothing has changed and the caller waits in-process).
// The signals clawos-wait forwards are blocked on the exec's thread first
// (the mask survives execve, a signal arriving meanwhile stays pending for
// clawos-wait); one Go already took means no hand-off. Supervise has
// checked that s has no handOffBlocker.
func (s *Sandbox) handOff(h *HandOff, signals <-chan os.Signal) error {
	p := s.plan
	st := handedOff{StateDir: p.cfg.StateDir, ID: p.ID, InitPID: s.agent.pid, exitInfo: s.exitInfo(), KillAfter: p.cfg.KillAfter, NetFD: -1, UserFD: -1}
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	// Without close-on-exec: the cleaning program reads the counters.
	if held := s.held; held != nil {
		for _, f := range []struct {
			file *os.File
			to   *int
		}{{held.net, &st.NetFD}, {held.user, &st.UserFD}} {
			fd, err := unix.Dup(int(f.file.Fd()))
			if err != nil {
				return fmt.Errorf("%w: %v", errNoHandOff, err)
			}
			fds = append(fds, fd)
			*f.to = fd
		}
		st.Complain = p.Ports.Complain
	}
	// The launcher pipe's write end stays open in clawos-wait: the
	// sandbox's init may not have checked it yet, and a hang-up means
	// the launcher is gone.
	launcher, err := unix.Dup(int(s.launcher.Fd()))
	if err != nil {
		return fmt.Errorf("%w: %v", errNoHandOff, err)
	}
	fds = append(fds, launcher)
	exe, err := unix.Open("/proc/self/exe", unix.O_PATH, 0)
	if err != nil {
		return fmt.Errorf("%w: open this executable: %v", errNoHandOff, err)
	}
	fds = append(fds, exe)
	state, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoHandOff, err)
	}
	argv := []string{WaiterName, strconv.Itoa(s.agent.pid), strconv.FormatInt(p.cfg.KillAfter.Milliseconds(), 10), strconv.Itoa(exe)}
	// The relays stop between two reads; clawos-wait reads on from there
	// (or, where the exec fails, they copy on here).
	for _, r := range s.relays {
		r.pause()
	}
	resume := func() {
		for _, r := range s.relays {
			if !r.eof.Load() {
				r.start()
			}
		}
	}
	for _, r := range s.relays {
		if r.eof.Load() {
			continue
		}
		from, to, err := r.dup()
		if err != nil {
			resume()
			return fmt.Errorf("%w: %v", errNoHandOff, err)
		}
		fds = append(fds, from, to)
		argv = append(argv, "--relay", strconv.Itoa(from), strconv.Itoa(to))
	}
	argv = append(append(append(argv, "--"), h.Args...), string(state))
	env := os.Environ()
	err = s.thread.do(func() error {
		var set, old unix.Sigset_t
		for _, sig := range []unix.Signal{unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGCHLD, unix.SIGALRM} {
			set.Val[(sig-1)/64] |= 1 << ((uint(sig) - 1) % 64)
		}
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
			return fmt.Errorf("%w: %v", errNoHandOff, err)
		}
		if len(signals) > 0 {
			unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
			return fmt.Errorf("%w: a signal arrived", errNoHandOff)
		}
		err := unix.Exec(h.Waiter, argv, env)
		unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
		return fmt.Errorf("%w: exec %s: %v", errNoHandOff, h.Waiter, err)
	})
	resume()
	return err
}

// FinishHandOff is the end of a handed-off run, in the program clawos-wait
// execs: args are what it appended to HandOff.Args (the state, the wait
// status, whether it killed the agent for not exiting in time). It reports
// as Wait does, removes everything of the sandbox as Destroy does (with the
// clean-up of a killed clawos-run's sandbox, which misses nothing since
// that run could do no clean-up of its own), and returns the agent's exit
// status.
func FinishHandOff(ctx context.Context, args []string, log logrus.FieldLogger) (int, error) {
	if len(args) != 3 {
		return 0, clawerr.New(clawerr.EProto, "finish a hand-off: want STATE WAIT-STATUS KILLED")
	}
	var st handedOff
	if err := json.Unmarshal([]byte(args[0]), &st); err != nil {
		return 0, clawerr.Wrap(clawerr.EProto, err, "finish a hand-off: state")
	}
	ws, err := strconv.Atoi(args[1])
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EProto, err, "finish a hand-off: wait status")
	}
	// Only the sandbox's own launcher, this process (the same pid and
	// start time as the one that created it), removes it this way.
	o, err := readOwner(bundleDir(st.StateDir, st.ID))
	if err != nil {
		return 0, clawerr.Wrap(clawerr.EIO, err, "finish a hand-off: the sandbox's owner record")
	}
	if me, err := self(o.Runtime, o.Root); err != nil || me != o || o.Runtime != "embedded" {
		return 0, clawerr.New(clawerr.EPerm, "finish a hand-off: sandbox "+st.ID+" is not this process's")
	}
	if args[2] == "1" {
		log.WithField("after", st.KillAfter).Warn("the agent did not exit after the forwarded signal; killing it")
	}
	status := exitStatus(unix.WaitStatus(ws), st.InitPID, st.exitInfo, log)
	if st.NetFD >= 0 && st.UserFD >= 0 {
		held := &heldNS{net: os.NewFile(uintptr(st.NetFD), "netns"), user: os.NewFile(uintptr(st.UserFD), "userns")}
		reportRefusals(held, st.Complain, log)
		held.Close()
	}
	killChildren()
	if err := removeSandbox(ctx, st.StateDir, st.ID, o); err != nil {
		// As Destroy: the agent's status stands; the next run retries.
		log.WithError(err).WithField("id", st.ID).Warn("the sandbox could not be confirmed stopped; the next clawos-run removes it")
	}
	return status, nil
}

// killChildren kills and reaps what is left of this process's children
// (none is expected: the sandbox's init is reaped); they are this
// process's, unreaped, so their pids are theirs.
func killChildren() {
	// This process's main thread is the one that forked the sandbox's
	// processes (and execed, keeping them).
	pid := strconv.Itoa(os.Getpid())
	b, err := os.ReadFile("/proc/self/task/" + pid + "/children")
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if child, err := strconv.Atoi(f); err == nil {
			unix.Kill(child, unix.SIGKILL)
			var ws unix.WaitStatus
			unix.Wait4(child, &ws, 0, nil)
		}
	}
}
