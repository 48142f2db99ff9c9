package sandbox

import (
	"cmp"
	"context"
	"io"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/cgwarm"
	"github.com/clawos/clawos-security/internal/confine"
)

// Stdio are an agent's standard streams. Without a terminal (Config.TTY),
// a terminal among them never reaches the agent (see withoutTerminal).
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// Runtime creates the containers of sandboxes: NewRuntime's embedded one
// (runc's libcontainer in this process) or a runc-compatible program.
type Runtime interface {
	// Name is what the bundle's owner record names: "embedded" or the
	// program's path, so that a later run cleans up with the same runtime.
	Name() string
	// root is the runtime's state directory.
	root() string
	// cleanStale removes what killed runs of this state directory left.
	cleanStale(ctx context.Context)
	// create creates s's container from its written bundle, its init
	// waiting to be started, with launcher as its fd 3.
	create(ctx context.Context, s *Sandbox, stdio Stdio, launcher *os.File) (container, error)
}

// container is a created container of a runtime.
type container interface {
	pid() int
	// start lets the init run the agent.
	start(ctx context.Context) error
	// wait reaps the container's init and returns its status.
	wait() (unix.WaitStatus, error)
	// kill kills the init and reaps it (a start that failed).
	kill()
	// destroy removes the container's runtime state.
	destroy()
}

// NewRuntime returns the runtime name names: "embedded", or a
// runc-compatible program looked up in PATH; its state lives under
// stateDir.
func NewRuntime(name, stateDir string, log logrus.FieldLogger) (Runtime, error) {
	if name == "embedded" {
		return newEmbeddedRuntime(stateDir, log), nil
	}
	return newRuncRuntime(name, stateDir, log)
}

// runtimeKind names the runtime whose measured needs the container-level
// filter includes: embedded (libcontainer in this binary) or runc (any
// runc-compatible program).
func runtimeKind(name string) string {
	if name == "embedded" {
		return "embedded"
	}
	return "runc"
}

// Sandbox is a planned sandbox being run: Start creates it and starts its
// agent, Signal and Wait act on the agent, Destroy removes everything it
// holds on the host.
type Sandbox struct {
	plan *Plan
	// spec is the plan's spec as this run writes it (its staged mounts'
	// sources): the plan itself is never changed by a run.
	spec *specs.Spec
	rt   Runtime
	log  logrus.FieldLogger
	ctr  container
	// agent is the sandbox's pid 1; agentPID the agent's own host pid
	// when clawos-init stays pid 1 (PIDOneInit), once seen.
	agent    *agentProc
	agentPID int
	owner    owner // who runs it, recorded in the bundle
	// idmapped are the destinations of mounts staged as idmapped mounts
	// (stageIDMaps), checked in the created sandbox; stageDir, when set,
	// is the state directory where writeBundle stages them (a run, not a
	// bundle for another runtime).
	idmapped []string
	stageDir string
	// thread is the launcher thread the sandbox's processes are forked
	// from (osThread); stdio the agent's streams as the runtime got them.
	thread *osThread
	stdio  Stdio
	// held holds the sandbox's namespaces for the port policy's
	// counters; stop ends what guard set up: the port policy's hold.
	held *heldNS
	stop func()
	// launcher is the launcher pipe's write end (launchPipe).
	launcher *os.File
	// inProcess: the runtime runs in this process (the embedded one): it
	// takes the spec from memory, so no config.json is written (the
	// agent's environment, which may hold secrets, never reaches a file,
	// and the start skips encoding it), and the container's init is this
	// process's child (it can be handed to clawos-wait).
	inProcess bool
	// privateRoot: the root's mount points are made in a tmpfs that only
	// the sandbox's mount namespace holds (onPrivateRoot), not in the
	// bundle on the host: the embedded runtime as root, in a run.
	privateRoot bool
	refused     int // packets the port policy refused (or would have)
	// relays copy the agent's output to the caller's terminal (relay).
	relays []*relay
	// undo are Destroy's steps, run last first.
	undo []func()
}

// onDestroy adds a step to Destroy.
func (s *Sandbox) onDestroy(f func()) { s.undo = append(s.undo, f) }

// Config is what the plan was made of, defaults filled in.
func (p *Plan) Config() Config { return p.cfg }

// Plan is what the sandbox runs.
func (s *Sandbox) Plan() *Plan { return s.plan }

// WarmCgroups starts, on a thread of its own, the kernel's wait that the
// sandbox's first move into its cgroups would otherwise make Start pay: an
// RCU grace period, 4-18 ms on this project's machine (package
// internal/cgwarm). A launcher calls it once, as early as it knows that it
// will start a sandbox (before NewPlan); it returns at once, changes no
// cgroup membership, and where it cannot help (no writable cgroup.procs,
// a hierarchy mounted with favordynmods) it only costs a failed write.
func WarmCgroups() { cgwarm.Start() }

// Start creates the sandbox of plan p with runtime rt and starts its agent:
// stale sandboxes of the state directory are cleaned, the bundle written,
// the container created, the port policy installed in its network
// namespace and the idmapped mounts checked, then the agent started. On
// failure everything is undone; otherwise the caller must Wait and
// Destroy.
func Start(ctx context.Context, p *Plan, rt Runtime, stdio Stdio) (*Sandbox, error) {
	s := &Sandbox{plan: p, spec: p.specCopy(), rt: rt, log: p.log, thread: newOSThread(), inProcess: runtimeKind(rt.Name()) == "embedded"}
	s.onDestroy(s.thread.end)
	started := false
	defer func() {
		// Whatever failed, nothing of the sandbox stays.
		if !started {
			s.Destroy()
		}
	}()
	ph := newPhases(p.log)
	var err error
	var relayed []*os.File // the agent's ends of the relays' pipes
	if !p.cfg.TTY {
		copyTerminal := plainTerminal
		if s.inProcess {
			// In this process the terminal is copied by relays, which a
			// hand-off passes to clawos-wait.
			copyTerminal = func(term *os.File) (io.Writer, error) {
				r, w, err := newRelay(term)
				if err != nil {
					return nil, err
				}
				s.relays = append(s.relays, r)
				s.onDestroy(r.close)
				s.onDestroy(func() { w.Close() }) // a start that fails before the create
				relayed = append(relayed, w)
				return w, nil
			}
		}
		var closeIn func()
		if stdio.In, stdio.Out, stdio.Err, closeIn, err = withoutTerminal(stdio.In, stdio.Out, stdio.Err, copyTerminal); err != nil {
			return nil, err
		}
		s.onDestroy(closeIn)
	}
	s.stdio = stdio
	stateDir := p.cfg.StateDir
	rt.cleanStale(ctx)
	ph.done("clean stale")
	release, err := s.hold(stateDir)
	if err != nil {
		return nil, err
	}
	s.onDestroy(release)
	s.privateRoot = s.inProcess && os.Geteuid() == 0 && s.spec.Root.Path == "rootfs"
	if err := s.writeBundle(p.Bundle); err != nil {
		os.RemoveAll(p.Bundle)
		return nil, err
	}
	s.onDestroy(func() { os.RemoveAll(p.Bundle) })
	ph.done("bundle")
	pr, pw, err := launchPipe()
	if err != nil {
		return nil, err
	}
	s.launcher = pw
	s.onDestroy(func() { pw.Close() })
	ctr, err := rt.create(ctx, s, stdio, pr)
	pr.Close()
	// The agent holds the relays' write ends now: end of file comes when
	// the sandbox's processes are gone.
	for _, w := range relayed {
		w.Close()
	}
	if err != nil {
		return nil, err
	}
	for _, r := range s.relays {
		r.start()
	}
	s.ctr = ctr
	s.onDestroy(ctr.destroy)
	ph.done("create")
	s.agent = openAgent(ctr.pid())
	s.onDestroy(s.agent.close)
	// The guard runs while the runtime finishes the start and clawos-init
	// prepares the agent's confinement: clawos-init waits for the
	// go-ahead, written only once the guard holds, before the agent's
	// first instruction (the runtime's last steps, the exec of clawos-init
	// and its loading of the container filter overlap the guard's netlink
	// and kernel work).
	guarded := make(chan error, 1)
	go func() {
		var err error
		s.stop, err = s.guard(ctx)
		guarded <- err
	}()
	startErr := ctr.start(ctx)
	guardErr := <-guarded
	s.onDestroy(s.stopGuard)
	if err := cmp.Or(guardErr, startErr); err != nil {
		ctr.kill()
		return nil, err
	}
	if _, err := pw.Write([]byte{gateByte}); err != nil {
		ctr.kill()
		return nil, clawerr.Wrap(clawerr.EInternal, err, "let the agent start")
	}
	ph.done("guard and start")
	s.started(ctr.pid(), pw)
	if o := p.obs; o != nil {
		if err := o.super.start(ctr.pid()); err != nil {
			ctr.kill()
			return nil, err
		}
	}
	started = true
	return s, nil
}

// Signal sends sig to the sandbox's pid 1 (the agent, or clawos-init,
// which forwards it, with PIDOneInit); after it was reaped, nothing
// happens.
func (s *Sandbox) Signal(sig unix.Signal) error { return s.agent.signal(sig) }

// Wait waits for the agent and returns its exit status, 128+N if it died
// of signal N (a seccomp kill is logged with its syscall).
func (s *Sandbox) Wait() (int, error) {
	ws, err := s.ctr.wait()
	if err != nil {
		return 0, err
	}
	for _, r := range s.relays {
		r.wait()
	}
	if o := s.plan.obs; o != nil {
		if err := o.super.wait(); err != nil {
			return 0, err
		}
	}
	s.stopGuard()
	return exitStatus(ws, s.ctr.pid(), s.exitInfo(), s.log), nil
}

// stopGuard ends the port policy's hold, once.
func (s *Sandbox) stopGuard() {
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
}

// Destroy removes the container and everything the sandbox holds on the
// host (its bundle, staged mounts, AppArmor profile use, descriptors).
func (s *Sandbox) Destroy() error {
	for i := len(s.undo) - 1; i >= 0; i-- {
		s.undo[i]()
	}
	s.undo = nil
	return nil
}

// Run starts the sandbox, forwards the signals that arrive on signals to
// the agent (a second one, or none of them heeded within the plan's
// KillAfter, kills it), waits for it, writes what an observed run found
// (Finish, its table to report) and destroys the sandbox. It returns the
// agent's exit status.
func Run(ctx context.Context, p *Plan, rt Runtime, stdio Stdio, signals <-chan os.Signal, report io.Writer) (int, error) {
	s, err := Start(ctx, p, rt, stdio)
	if err != nil {
		return 0, err
	}
	return s.Supervise(signals, report, nil)
}

// Supervise is Run once Start has returned s. With h, once the agent has
// run for h.After, this process becomes clawos-wait (HandOff) and
// Supervise does not return; where s needs this process while the agent
// runs (handOffBlocker, checked here only), or the exec fails, it goes on
// here.
func (s *Sandbox) Supervise(signals <-chan os.Signal, report io.Writer, h *HandOff) (int, error) {
	ph := newPhases(s.log)
	defer func() {
		s.Destroy()
		ph.done("destroy")
	}()
	var first os.Signal
	if h != nil && s.handOffBlocker() == "" {
		select {
		case <-s.agent.exited():
		case first = <-signals:
		case <-time.After(h.After):
			err := s.handOff(h, signals)
			s.log.WithError(err).Debug("waiting for the agent in clawos-run")
		}
	}
	done, forwarding := make(chan struct{}), make(chan struct{})
	go func() {
		forwardSignals(first, signals, done, s.agent, s.plan.cfg.KillAfter, s.log)
		close(forwarding)
	}()
	status, err := s.Wait()
	close(done)
	// Destroy closes the agent's pidfd: no signal may be on its way.
	<-forwarding
	ph.done("wait")
	if err != nil {
		return status, err
	}
	return status, s.Finish(status, report)
}

// phases logs at debug level how long each step took since the last.
type phases struct {
	log  logrus.FieldLogger
	last time.Time
}

func newPhases(log logrus.FieldLogger) *phases { return &phases{log: log, last: time.Now()} }

func (p *phases) done(step string) {
	now := time.Now()
	p.log.WithFields(logrus.Fields{"step": step, "took": now.Sub(p.last)}).Debug("timing")
	p.last = now
}

// WriteBundle writes the bundle of plan p, as runtime rt would run it, to
// p.Bundle and runs nothing (clawos-run --write-bundle).
func WriteBundle(p *Plan, rt Runtime) error {
	// The bundle goes to a runtime later: refuse now what it could not
	// load. Start does not: the stage is compiled before the agent's first
	// instruction (by the plan for clawos-init under the embedded runtime,
	// by runc otherwise), and a failure refuses the start.
	if err := confine.CheckContainer(p.Stages); err != nil {
		return err
	}
	s := &Sandbox{plan: p, spec: p.specCopy(), rt: rt, log: p.log}
	return s.writeBundle(p.Bundle)
}

// writeBundle records the owner and writes the bundle to dir.
func (s *Sandbox) writeBundle(dir string) error {
	o, err := self(s.rt.Name(), s.rt.root())
	if err != nil {
		return err
	}
	s.owner = o
	return writeBundle(dir, s)
}

// specCopy is a copy of the plan's spec whose mounts a run may change.
func (p *Plan) specCopy() *specs.Spec {
	c := *p.Spec
	c.Mounts = append([]specs.Mount(nil), p.Spec.Mounts...)
	return &c
}

// errNotStarted wraps a failure of the runtime to start the agent.
func errNotStarted(err error) error { return clawerr.Wrap(clawerr.EInternal, err, "start the agent") }
