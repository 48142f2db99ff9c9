package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
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

func bundleDir(stateDir, id string) string { return filepath.Join(stateDir, "bundles", id) }

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
	r.cleanStale(ctx)
	dir := sb.bundle
	if err := writeBundle(r.stateDir, dir, sb); err != nil {
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

	pidFile := filepath.Join(dir, "agent.pid")
	args := []string{"--root", r.root, "create", "--bundle", dir, "--pid-file", pidFile}
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
	if err := create.Run(); err != nil {
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
	stop, err := guard(ctx, pid, sb, killAfter, r.log)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return 0, err
	}
	defer stop()
	if err := r.runc(ctx, "start", sb.id); err != nil {
		unix.Kill(pid, unix.SIGKILL)
		return 0, err
	}
	ws, err := waitFor(pid)
	if err != nil {
		return 0, err
	}
	streams.wait()
	return exitStatus(ws, pid, sb, r.log), nil
}

type fileOrErr struct {
	f   *os.File
	err error
}

// guard does what both runtimes do between creating the sandbox and
// starting its agent: install the port rules in its network namespace, and
// forward signals to the agent. stop undoes the forwarding and reports the
// port policy's refusals.
func guard(ctx context.Context, pid int, sb *sandbox, killAfter time.Duration, log *logrus.Logger) (stop func(), err error) {
	var held *heldNS
	if sb.ports != nil {
		if held, err = installPolicy(ctx, pid, sb.ports, log); err != nil {
			return nil, err
		}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	go forwardSignals(sigs, pid, killAfter, log)
	return func() {
		signal.Stop(sigs)
		if held != nil {
			reportRefusals(held, log)
			held.Close()
		}
	}, nil
}

// exitStatus is the agent's exit status, 128+N when it died of signal N; a
// seccomp kill is logged with the syscall the kernel reported.
func exitStatus(ws unix.WaitStatus, pid int, sb *sandbox, log *logrus.Logger) int {
	if !ws.Signaled() {
		return ws.ExitStatus()
	}
	sig := ws.Signal()
	if sig == unix.SIGSYS {
		log.WithField("syscall", killedSyscall(pid, sb.stages.Agent.Arch)).Error("agent killed by seccomp (SIGSYS): a call outside its whitelist")
	}
	return 128 + int(sig)
}

// nsenterArgs runs a command in a sandbox's network namespace. A non-root
// caller joins the sandbox's user namespace first, which it owns, to get
// CAP_NET_ADMIN over the network namespace, keeping its credentials
// (setgroups is denied there). Root already has the capability, and its uid
// is not mapped in the sandbox, so it joins the network namespace only.
func nsenterArgs(userns, netns string, cmd ...string) []string {
	args := []string{"--net=" + netns}
	if os.Geteuid() != 0 {
		args = []string{"--preserve-credentials", "--user=" + userns, "--net=" + netns}
	}
	return append(append(args, "--"), cmd...)
}

// heldNS holds a sandbox's network and user namespaces open after its agent
// exits.
type heldNS struct{ net, user *os.File }

func (h *heldNS) Close() error {
	h.user.Close()
	return h.net.Close()
}

// installPolicy installs the port rules in the network namespace of pid and
// returns the namespaces, held open so that the counters can be read after
// the agent exits. Root installs them over netlink from this process; a
// non-root caller through nsenter and nft, joining the sandbox's user
// namespace first.
func installPolicy(ctx context.Context, pid int, p *portPolicy, log *logrus.Logger) (*heldNS, error) {
	netns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "hold the sandbox's network namespace")
	}
	userns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/user")
	if err != nil {
		netns.Close()
		return nil, clawerr.Wrap(clawerr.EInternal, err, "hold the sandbox's user namespace")
	}
	held := &heldNS{net: netns, user: userns}
	if os.Geteuid() == 0 {
		err = installNetlink(netns, p)
	} else {
		err = installRules(ctx, pid, p.ruleset())
	}
	if err != nil {
		held.Close()
		return nil, err
	}
	log.WithField("pid", pid).Debug("port rules installed in the sandbox's network namespace")
	return held, nil
}

// reportRefusals logs how many packets the port policy refused.
func reportRefusals(ns *heldNS, log *logrus.Logger) {
	if os.Geteuid() == 0 {
		n, err := refusedNetlink(ns.net)
		if err != nil {
			log.WithError(err).Debug("read the port policy counters")
		} else if n > 0 {
			log.WithField("refused_packets", n).Warn("the port policy refused connection attempts")
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), runcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", nsenterArgs("/proc/self/fd/4", "/proc/self/fd/3", "nft", "list", "table", "inet", namespaces.NftTable)...)
	cmd.ExtraFiles = []*os.File{ns.net, ns.user}
	out, err := cmd.Output()
	if err != nil {
		log.WithError(err).Debug("read the port policy counters")
		return
	}
	if n := namespaces.RefusedPackets(string(out)); n > 0 {
		log.WithField("refused_packets", n).Warn("the port policy refused connection attempts")
	}
}

// forwardSignals passes each signal to the agent. The agent is pid 1 of its
// pid namespace, so the kernel drops a signal it has no handler for; if it
// has not exited killAfter after the first signal, or a second signal
// comes, it is killed.
func forwardSignals(sigs <-chan os.Signal, pid int, killAfter time.Duration, log *logrus.Logger) {
	var deadline <-chan time.Time
	forwarded := 0
	for {
		select {
		case s, ok := <-sigs:
			if !ok {
				return
			}
			forwarded++
			if forwarded > 1 {
				unix.Kill(pid, unix.SIGKILL)
				continue
			}
			unix.Kill(pid, s.(syscall.Signal))
			deadline = time.After(killAfter)
		case <-deadline:
			log.WithField("after", killAfter).Warn("the agent did not exit after the forwarded signal; killing it")
			unix.Kill(pid, unix.SIGKILL)
			return
		}
	}
}

func (r *runcRuntime) writeBundle(dir string, sb *sandbox) error {
	return writeBundle(r.stateDir, dir, sb)
}

// writeBundle writes config.json, the init and the agent's filter, and the
// empty root with its mount points (created here, as root, because runc's
// init creates them as the sandbox's mapped root otherwise).
func writeBundle(stateDir, dir string, sb *sandbox) error {
	root := filepath.Join(dir, "rootfs")
	cdir := filepath.Join(dir, "clawos")
	// The sandbox's mapped root reaches rootfs and clawos/ through these
	// directories: each must be traversable (0711, not listable), whoever
	// created it first (runc creates its --root 0700).
	for _, d := range []string{stateDir, filepath.Dir(dir), dir} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "create bundle")
		}
		if err := os.Chmod(d, 0o711); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "create bundle")
		}
	}
	for _, d := range []string{root, cdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "create bundle")
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write owner")
	}
	if err := copyFile(sb.initBin, filepath.Join(cdir, "clawos-init"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cdir, "agent.bpf"), sb.agentBPF.Bytes(), 0o644); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write agent filter")
	}
	if sb.spec.Root.Path == "rootfs" {
		for _, p := range sortedKeysOf(sb.links) {
			if err := os.Symlink(sb.links[p], filepath.Join(root, p)); err != nil {
				return clawerr.Wrap(clawerr.EIO, err, "rootfs symlink")
			}
		}
		for _, m := range sb.spec.Mounts {
			if err := mountPoint(root, m.Destination, m.Type == "bind" && isFile(m.Source)); err != nil {
				return err
			}
		}
		if sb.spec.Linux != nil && len(sb.spec.Linux.UIDMappings) > 0 && os.Geteuid() == 0 {
			uid, gid := int(sb.spec.Linux.UIDMappings[0].HostID), int(sb.spec.Linux.GIDMappings[0].HostID)
			if err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
				if err != nil {
					return err
				}
				return os.Lchown(p, uid, gid)
			}); err != nil {
				return clawerr.Wrap(clawerr.EIO, err, "chown rootfs to the sandbox's root")
			}
		}
	}
	cfg, err := translate.MarshalSpec(sb.spec)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644)
}

func mountPoint(root, dest string, file bool) error {
	p := filepath.Join(root, dest)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	if file {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "mount point "+dest)
		}
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "mount point "+dest)
		}
		return f.Close()
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "mount point "+dest)
	}
	return nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir()
}

// installRules loads the sandbox's nftables ruleset inside its network
// namespace, before the agent's first instruction.
func installRules(ctx context.Context, pid int, ruleset string) error {
	ctx, cancel := context.WithTimeout(ctx, runcTimeout)
	defer cancel()
	ns := "/proc/" + strconv.Itoa(pid) + "/ns/"
	cmd := exec.CommandContext(ctx, "nsenter", nsenterArgs(ns+"user", ns+"net", "nft", "-f", "-")...)
	cmd.Stdin = strings.NewReader(ruleset)
	if out, err := cmd.CombinedOutput(); err != nil {
		return &clawerr.Error{Code: clawerr.EPerm, Message: "cannot install the port restrictions in the sandbox's network namespace; the agent was not started",
			Err: fmt.Errorf("%w: %s", err, bytes.TrimSpace(out)), Hint: "install nftables (apt-get install nftables)"}
	}
	return nil
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

// waitFor reaps children until pid exits; as child subreaper we are the
// agent's parent once runc create has exited.
func waitFor(pid int) (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, clawerr.Wrap(clawerr.EInternal, err, "wait for the agent")
		}
		if got == pid {
			return ws, nil
		}
	}
}

var auditSyscall = regexp.MustCompile(`type=1326 .* pid=(\d+) .* arch=([0-9a-f]+) syscall=(\d+)`)

// killedSyscall names the syscall the kernel logged for a seccomp kill of
// pid (needs CAP_SYSLOG; the kernel rate-limits these lines), or "unknown".
func killedSyscall(pid int, arch translate.Arch) string {
	buf := make([]byte, 1<<20)
	n, err := unix.Klogctl(unix.SYSLOG_ACTION_READ_ALL, buf)
	if err != nil {
		return "unknown (the kernel log is not readable)"
	}
	name := "unknown (the kernel did not log it)"
	sc := bufio.NewScanner(bytes.NewReader(buf[:n]))
	for sc.Scan() {
		m := auditSyscall.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != strconv.Itoa(pid) {
			continue
		}
		nr, _ := strconv.Atoi(m[3])
		if a, _ := strconv.ParseUint(m[2], 16, 32); uint32(a) != arch.Audit() {
			name = fmt.Sprintf("syscall %d of another architecture (audit arch %s)", nr, m[2])
			continue
		}
		name = arch.SyscallName(nr)
	}
	return name
}

// staleBundles lists the bundles whose clawos-run is gone (it was killed).
func staleBundles(stateDir string) []string {
	var out []string
	dirs, _ := filepath.Glob(filepath.Join(stateDir, "bundles", "*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || ownerAlive(owner) {
			continue
		}
		out = append(out, d)
	}
	return out
}

// ownerAlive reports whether pid is a live clawos-run. A killed clawos-run
// whose parent does not reap it stays a zombie (PID 1 on some machines
// never reaps orphans), and a pid can be reused by another program: neither
// owns a sandbox.
func ownerAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// pid (comm) state ...; comm may contain spaces and parentheses.
	st := string(b)
	open, closing := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
	if open < 0 || closing < open || closing+2 >= len(st) {
		return false
	}
	comm, state := st[open+1:closing], st[closing+2]
	return state != 'Z' && state != 'X' && comm == progName
}

// cleanStale removes what earlier runs left when clawos-run itself was
// killed: the container and its bundle.
func (r *runcRuntime) cleanStale(ctx context.Context) {
	for _, d := range staleBundles(r.stateDir) {
		id := filepath.Base(d)
		r.log.WithField("id", id).Info("removing a sandbox whose clawos-run is gone")
		if err := r.runc(ctx, "delete", "--force", id); err != nil {
			r.log.WithError(err).Debug("runc delete of a stale sandbox")
		}
		os.RemoveAll(d)
	}
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
