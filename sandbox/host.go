// Helpers both runtimes use: the bundle on disk, the port rules and the
// signal guard around the agent, its exit status, and stale sandboxes.

package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/killlog"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

func bundleDir(stateDir, id string) string { return filepath.Join(stateDir, "bundles", id) }

// launcherFD is where the agent's init finds the read end of the launcher
// pipe: the first descriptor after the standard streams.
const launcherFD = 3

// gateByte is the launcher's go-ahead on the launcher pipe: clawos-init
// starts the agent only once it has read it (GATE_BYTE in
// cmd/clawos-init/init.c).
const gateByte = 'g'

// launchPipe is the pipe that tells clawos-init whether clawos-run still
// runs, and when the agent may start: clawos-run alone holds the write end
// (close-on-exec, so no runtime process inherits it), the sandbox's init
// gets the read end as fd 3, waits there for gateByte, and a hang-up means
// clawos-run is gone. The write end is kept open until clawos-run exits (or
// dies).
func launchPipe() (r, w *os.File, err error) {
	r, w, err = os.Pipe()
	if err != nil {
		return nil, nil, clawerr.Wrap(clawerr.EInternal, err, "launcher pipe")
	}
	return r, w, nil
}

type fileOrErr struct {
	f   *os.File
	err error
}

// guard does what both runtimes do between creating the sandbox and
// starting its agent: check its idmapped mounts, install the port rules in
// its network namespace and make its memfds non-executable. The returned
// stop reports the port policy's refusals and lets its namespaces go.
func (s *Sandbox) guard(ctx context.Context) (stop func(), err error) {
	pid := s.agent.pid
	if err := checkIDMapped(pid, s.idmapped); err != nil {
		return nil, err
	}
	if s.stageDir != "" {
		// The sandbox holds its own copies of the staged mounts now.
		unstageAll(idmapDir(s.stageDir, s.plan.ID))
	}
	if s.plan.Pasta() {
		p, err := startPasta(s.plan.cfg.StateDir, s.plan.ID, pid, s.thread.do)
		if err != nil {
			return nil, err
		}
		s.onDestroy(p.stop)
	}
	var held *heldNS
	ports := s.plan.Ports
	// In the host's network namespace (--net host) the port rules are
	// Landlock's alone: no table is installed there.
	if ports != nil && s.plan.PrivateNet() {
		if held, err = installPolicy(ctx, pid, ports, s.log); err != nil {
			return nil, err
		}
		s.held = held
	}
	// Only where the agent may execute programs: with start-only exec the
	// filter already kills the execve of a memfd (and this costs a
	// process per start).
	if s.plan.ExecAllowed {
		if err := noexecMemfds(ctx, pid); err != nil {
			if held != nil {
				held.Close()
			}
			return nil, err
		}
	}
	return func() {
		if held != nil {
			s.refused = reportRefusals(held, ports.Complain, s.log)
			held.Close()
		}
	}, nil
}

// agentProc is the sandbox's pid 1, signalled through a pidfd where the
// kernel has them (5.3+), so that no signal reaches another process that
// got its pid after it was reaped; kill(2) otherwise.
// checkIDMapped verifies in the created sandbox (the agent's init, pid,
// waits to be started) that every mount staged as an idmapped mount
// (want) is one there: the caller's files are never handed to an agent
// through a mount that would give what it writes to another owner.
func checkIDMapped(pid int, want []string) error {
	if len(want) == 0 {
		return nil
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "read the sandbox's mounts")
	}
	defer f.Close()
	got, err := idmappedMounts(f)
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "read the sandbox's mounts")
	}
	for _, d := range want {
		if !got[d] {
			return &clawerr.Error{Code: clawerr.EPerm,
				Message: fmt.Sprintf("%s is not an idmapped mount in the sandbox: the agent's files there would not belong to the caller", d)}
		}
	}
	return nil
}

// appArmorHolder is sandbox id's name among a profile's users: the hook's
// containers are users too.
func appArmorHolder(id string) string { return "clawos-run-" + id }

// releaseAppArmor ends sandbox id's use of profile name, which leaves the
// kernel with its last user.
func releaseAppArmor(name, id string) {
	confine.SystemAppArmor().Release(name, appArmorHolder(id), confine.UnloadAppArmor)
}

// hold prepares what a run of the sandbox holds on the host outside its
// bundle, before the bundle is written: the state directory, traversable
// (0711) as writeBundle makes it (what is staged under it must not create
// it 0700: the sandbox's root could not reach its bundle then); the
// staging of its idmapped mounts (stageDir, which writeBundle uses); and
// its AppArmor profile, loaded unless another sandbox already uses it
// (same name, same text: the name is a digest of it). release undoes
// both: the profile leaves the kernel after its last user.
func (s *Sandbox) hold(stateDir string) (release func(), err error) {
	if err := mkdirCreated(stateDir, 0o711); err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "state directory")
	}
	s.stageDir = stateDir
	id := s.plan.ID
	unstage := func() { unstageAll(idmapDir(stateDir, id)) }
	prof := s.plan.AppArmor
	if prof == nil {
		return unstage, nil
	}
	if err := confine.SystemAppArmor().Hold(prof, appArmorHolder(id)); err != nil {
		return nil, err
	}
	return func() {
		releaseAppArmor(prof.Name, id)
		unstage()
	}, nil
}

// idmappedMounts reads a mountinfo file and says, for each mount point,
// whether its topmost mount is idmapped.
func idmappedMounts(r io.Reader) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	unescape := strings.NewReplacer(`\040`, " ", `\011`, "\t", `\012`, "\n", `\134`, `\`)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		out[unescape.Replace(f[4])] = slices.Contains(strings.Split(f[5], ","), "idmapped")
	}
	return out, sc.Err()
}

// started is what both runtimes do once the agent is started: with --init,
// learn the agent's host pid, pid 1's child (the kernel logs a seccomp kill
// by pid), then tell pid 1 through the launcher pipe (ack) that it may
// exit once the agent has: until then it keeps the agent's zombie, which
// its children file lists.
func (s *Sandbox) started(pid int, ack *os.File) {
	if !s.plan.PIDOneInit {
		return
	}
	defer ack.Write([]byte{1})
	path := "/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children"
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(path)
		if err != nil {
			return // pid 1 is gone
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			s.agentPID, _ = strconv.Atoi(f[0])
			return
		}
	}
}

type agentProc struct {
	pid   int
	pidfd int // -1 without pidfds
}

// openAgent opens a pidfd for pid, which must be a child of this process
// (not yet reaped: its pid cannot have been reused).
func openAgent(pid int) *agentProc {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		fd = -1
	}
	return &agentProc{pid: pid, pidfd: fd}
}

// signal sends sig to the agent; after it was reaped, nothing happens.
func (a *agentProc) signal(sig unix.Signal) error {
	if a.pidfd >= 0 {
		return unix.PidfdSendSignal(a.pidfd, sig, nil, 0)
	}
	return unix.Kill(a.pid, sig)
}

// wait reaps the agent alone (never another child of this process) and
// returns its status.
func (a *agentProc) wait() (unix.WaitStatus, error) {
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(a.pid, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return 0, clawerr.Wrap(clawerr.EInternal, err, "wait for the agent")
		}
		return ws, nil
	}
}

func (a *agentProc) close() {
	if a.pidfd >= 0 {
		unix.Close(a.pidfd)
		a.pidfd = -1
	}
}

// exitStatus is the agent's exit status, 128+N when it died of signal N; a
// seccomp kill is logged with the syscall the kernel reported. With --init,
// pid 1 exits with the agent's status, 128+N for a signal, and the agent
// is its child, s.agentPID.
func exitStatus(ws unix.WaitStatus, pid int, e exitInfo, log logrus.FieldLogger) int {
	if e.PIDOneInit && !ws.Signaled() && ws.ExitStatus() == 128+int(unix.SIGSYS) {
		name := "unknown (the agent's pid was not seen)"
		if e.AgentPID > 0 {
			name = e.killedSyscall(e.AgentPID)
		}
		log.WithField("syscall", name).Error("agent killed by seccomp (SIGSYS): a call outside its whitelist")
	}
	if !ws.Signaled() {
		return ws.ExitStatus()
	}
	sig := ws.Signal()
	if sig == unix.SIGSYS {
		log.WithField("syscall", e.killedSyscall(pid)).Error("agent killed by seccomp (SIGSYS): a call outside its whitelist")
	}
	return 128 + int(sig)
}

// exitInfo is what exitStatus needs of a sandbox to name a seccomp kill;
// a hand-off passes it on (handedOff).
type exitInfo struct {
	PIDOneInit bool           `json:"pid_one_init,omitempty"`
	AgentPID   int            `json:"agent_pid,omitempty"` // the agent's host pid under PIDOneInit, once seen
	Since      time.Time      `json:"since"`               // when the plan was made
	Arch       translate.Arch `json:"arch"`
}

func (s *Sandbox) exitInfo() exitInfo {
	return exitInfo{PIDOneInit: s.plan.PIDOneInit, AgentPID: s.agentPID, Since: s.plan.prepared, Arch: s.plan.Stages.Agent.Arch}
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
func installPolicy(ctx context.Context, pid int, p *namespaces.PortPolicy, log logrus.FieldLogger) (*heldNS, error) {
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
	// Never the host's namespace: a table there would hold every program
	// of the machine to the agent's ports.
	if err := notOwnNetNS(netns); err != nil {
		held.Close()
		return nil, err
	}
	if os.Geteuid() == 0 {
		err = p.Install(netns)
	} else {
		err = installRules(ctx, pid, p.Ruleset())
	}
	if err != nil {
		held.Close()
		return nil, err
	}
	log.WithField("pid", pid).Debug("port rules installed in the sandbox's network namespace")
	return held, nil
}

// notOwnNetNS refuses the network namespace ns when it is this process's
// own (the host's, for clawos-run).
func notOwnNetNS(ns *os.File) error {
	var own, theirs unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &own); err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "stat this process's network namespace")
	}
	if err := unix.Fstat(int(ns.Fd()), &theirs); err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "stat the sandbox's network namespace")
	}
	if own.Ino == theirs.Ino && own.Dev == theirs.Dev {
		return &clawerr.Error{Code: clawerr.EPerm, Message: "the sandbox shares this host's network namespace, where no port rules may be installed; the agent was not started"}
	}
	return nil
}

// reportRefusals logs and returns how many packets the port policy refused
// (or, complaining, would have refused).
func reportRefusals(ns *heldNS, complain bool, log logrus.FieldLogger) int {
	report := func(n int) int {
		switch {
		case n > 0 && complain:
			log.WithField("packets", n).Warn("complain: the port policy would have refused connection attempts")
		case n > 0:
			log.WithField("refused_packets", n).Warn("the port policy refused connection attempts")
		}
		return n
	}
	if os.Geteuid() == 0 {
		n, err := namespaces.RefusedNetlink(ns.net)
		if err != nil {
			log.WithError(err).Debug("read the port policy counters")
			return 0
		}
		return report(n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), runcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", nsenterArgs("/proc/self/fd/4", "/proc/self/fd/3", "nft", "list", "table", "inet", namespaces.NftTable)...)
	cmd.ExtraFiles = []*os.File{ns.net, ns.user}
	out, err := cmd.Output()
	if err != nil {
		log.WithError(err).Debug("read the port policy counters")
		return 0
	}
	return report(namespaces.RefusedPackets(string(out)))
}

// forwardSignals passes each signal to the agent: first (when not nil,
// one already taken from sigs), then those of sigs. The agent is pid 1 of
// its pid namespace, so the kernel drops a signal it has no handler for; if
// it has not exited killAfter after the first signal, or a second signal
// comes, it is killed. It ends when done is closed.
func forwardSignals(first os.Signal, sigs <-chan os.Signal, done <-chan struct{}, agent *agentProc, killAfter time.Duration, log logrus.FieldLogger) {
	var deadline <-chan time.Time
	forwarded := 0
	forward := func(s os.Signal) {
		forwarded++
		if forwarded > 1 {
			agent.signal(unix.SIGKILL)
			return
		}
		agent.signal(s.(syscall.Signal))
		deadline = time.After(killAfter)
	}
	if first != nil {
		forward(first)
	}
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			forward(s)
		case <-deadline:
			select {
			case <-done:
				return
			default:
			}
			log.WithField("after", killAfter).Warn("the agent did not exit after the forwarded signal; killing it")
			agent.signal(unix.SIGKILL)
			return
		}
	}
}

// writeBundle writes config.json (not for a runtime that takes the spec
// from memory: Sandbox.inProcess), the init and the agent's filter, and
// the empty root with its mount points (created here, as root, because
// runc's init creates them as the sandbox's mapped root otherwise).
func writeBundle(dir string, s *Sandbox) error {
	p := s.plan
	root := filepath.Join(dir, "rootfs")
	cdir := filepath.Join(dir, "clawos")
	// The sandbox's mapped root reaches rootfs and clawos/ through these
	// directories: those clawos-run creates are traversable but not
	// listable (0711); those that exist keep their modes (a sticky /tmp
	// stays sticky). What holds secrets (config.json: the environment) is
	// the owner's alone.
	if err := mkdirCreated(dir, 0o711); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "create bundle")
	}
	for _, d := range []string{root, cdir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "create bundle")
		}
	}
	if err := writeOwner(dir, s.owner); err != nil {
		return err
	}
	var shared string
	if p.cfg.BundleDir == "" { // the state directory's bundle, not --write-bundle's
		shared = filepath.Join(p.cfg.StateDir, "init")
	}
	if err := installInit(p.Init, filepath.Join(cdir, "clawos-init"), shared); err != nil {
		return err
	}
	// Before the mount points: /etc/hosts and resolv.conf are files'.
	for name, b := range map[string][]byte{"hosts": p.Hosts, "resolv.conf": p.Resolv} {
		if b != nil {
			if err := atomicfile.WriteState(filepath.Join(dir, name), b, 0o644); err != nil {
				return err
			}
		}
	}
	if s.spec.Root.Path == "rootfs" && !s.privateRoot {
		if err := s.writeRoot(root); err != nil {
			return err
		}
	}
	if s.stageDir != "" {
		// After the owner record: a clawos-run killed from here on leaves
		// a bundle by which cleanStale finds the staged mounts.
		if err := stageIDMaps(s.stageDir, s); err != nil {
			return err
		}
	}
	if s.inProcess {
		return nil
	}
	cfg, err := translate.MarshalSpec(s.spec)
	if err != nil {
		return err
	}
	return atomicfile.WriteState(filepath.Join(dir, "config.json"), cfg, 0o600)
}

// writeRoot makes the root's symlinks (/bin -> usr/bin and the like) and
// the mount points of the spec's mounts in root, owned by the sandbox's
// mapped root where it has one.
func (s *Sandbox) writeRoot(root string) error {
	for _, l := range namespaces.SortedLinks(s.plan.Links) {
		if err := os.Symlink(s.plan.Links[l], filepath.Join(root, l)); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "rootfs symlink")
		}
	}
	// A mount point inside a file system the runtime mounts first
	// (/dev/pts, /dev/shm, /dev/mqueue, /dev/.clawos in /dev's tmpfs) is
	// made there by the runtime: one in the bundle would be hidden under
	// it, a directory made and removed for nothing at every start.
	var mounted []string
	for _, m := range s.spec.Mounts {
		if !under(m.Destination, mounted) {
			if err := mountPoint(root, m.Destination, m.Type == "bind" && isFile(m.Source)); err != nil {
				return err
			}
		}
		if m.Type != "bind" {
			mounted = append(mounted, filepath.Clean(m.Destination))
		}
	}
	if s.spec.Linux != nil && len(s.spec.Linux.UIDMappings) > 0 && os.Geteuid() == 0 {
		uid, gid := int(s.spec.Linux.UIDMappings[0].HostID), int(s.spec.Linux.GIDMappings[0].HostID)
		if err := filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		}); err != nil {
			return clawerr.Wrap(clawerr.EIO, err, "chown rootfs to the sandbox's root")
		}
	}
	return nil
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

// under reports whether dest lies strictly beneath one of dirs.
func under(dest string, dirs []string) bool {
	dest = filepath.Clean(dest)
	for _, d := range dirs {
		if strings.HasPrefix(dest, d+"/") || (d == "/" && dest != "/") {
			return true
		}
	}
	return false
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

// killLogWait bounds the wait for the kernel's record of a seccomp kill:
// without an audit daemon the kernel's audit thread prints it after the
// agent has died.
const killLogWait = time.Second

// killedSyscall names the syscall of the agent's (pid's) seccomp kill, as
// the kernel logged it after the sandbox was prepared.
func (e exitInfo) killedSyscall(pid int) string {
	name, _ := killlog.Syscall(pid, e.Since, e.Arch, killLogWait)
	return name
}

// owner records who runs a sandbox: the clawos-run process, identified by
// its pid and its start time (a pid alone can be reused, a program name
// copied), and the runtime that created the container, so that a later run
// cleans up with the same runtime whichever it uses itself.
type owner struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start_time"` // /proc/PID/stat field 22, clock ticks since boot
	// Runtime is "embedded" or the path of the runc-compatible program;
	// Root is its state directory (libcontainer's root, runc --root).
	Runtime string `json:"runtime"`
	Root    string `json:"root"`
}

const ownerFile = "owner.json"

// self is the owner record of this process for runtime.
func self(runtime, root string) (owner, error) {
	start, err := procStart(os.Getpid())
	if err != nil {
		return owner{}, clawerr.Wrap(clawerr.EInternal, err, "read this process's start time")
	}
	return owner{PID: os.Getpid(), Start: start, Runtime: runtime, Root: root}, nil
}

func writeOwner(dir string, o owner) error {
	b, err := json.Marshal(o)
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode owner")
	}
	if err := atomicfile.WriteState(filepath.Join(dir, ownerFile), b, 0o600); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "write owner")
	}
	return nil
}

// procStart is a process's start time (field 22 of /proc/PID/stat).
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	st := string(b)
	// pid (comm) state ...; comm may contain spaces and parentheses.
	closing := strings.LastIndexByte(st, ')')
	if closing < 0 || closing+2 >= len(st) {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(st[closing+2:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, fmt.Errorf("process %d is gone (state %v)", pid, f[:1])
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// staleBundle is a bundle whose clawos-run is gone, with what its record
// says; o is the zero owner when the bundle has no readable record.
type staleBundle struct {
	dir string
	o   owner
}

// readOwner reads the owner record of bundle dir.
func readOwner(dir string) (owner, error) {
	var o owner
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err == nil {
		err = json.Unmarshal(b, &o)
	}
	if err == nil && (o.PID <= 0 || o.Runtime == "") {
		err = errors.New("incomplete owner record")
	}
	return o, err
}

// staleBundles lists the bundles whose clawos-run is gone (it was killed).
// A bundle without a readable owner record is left alone: nothing can say
// whether its owner lives, nor which runtime would stop its container.
func staleBundles(stateDir string, log logrus.FieldLogger) []staleBundle {
	var out []staleBundle
	dirs, _ := filepath.Glob(filepath.Join(stateDir, "bundles", "*"))
	for _, d := range dirs {
		o, err := readOwner(d)
		if err != nil {
			log.WithField("bundle", d).Debug("a bundle without a readable owner record is left alone")
			continue
		}
		if ownerAlive(o) {
			continue
		}
		out = append(out, staleBundle{dir: d, o: o})
	}
	return out
}

// ownerAlive reports whether the clawos-run that o records still runs: a
// process with its pid and its start time that is not a zombie (PID 1 on
// some machines never reaps orphans). A reused pid has another start time;
// a copy of clawos-run under another name is still the owner.
func ownerAlive(o owner) bool {
	start, err := procStart(o.PID)
	return err == nil && start == o.Start
}

// cleanStale stops and removes what earlier runs left when their
// clawos-run was killed, each with the runtime that created it. A bundle
// whose container cannot be confirmed stopped is kept, and said so: state
// is never deleted from under a container that may still run.
func cleanStale(ctx context.Context, stateDir string, log logrus.FieldLogger) {
	for _, sb := range staleBundles(stateDir, log) {
		id := filepath.Base(sb.dir)
		l := log.WithFields(logrus.Fields{"id": id, "runtime": sb.o.Runtime})
		l.Info("removing a sandbox whose clawos-run is gone")
		if err := removeSandbox(ctx, stateDir, id, sb.o); err != nil {
			l.WithError(err).Warn("a stale sandbox could not be confirmed stopped; its bundle is kept")
		}
	}
}

// removeSandbox removes everything sandbox id of stateDir holds on the host
// once its container is confirmed stopped (o names its runtime), and fails
// only when it is not: what a killed clawos-run left, and what a
// handed-off run (FinishHandOff) leaves to its end.
func removeSandbox(ctx context.Context, stateDir, id string, o owner) error {
	var err error
	if o.Runtime == "embedded" {
		err = destroyEmbedded(o.Root, id)
	} else {
		err = destroyRunc(ctx, o.Runtime, o.Root, id)
	}
	if err != nil {
		return err
	}
	unstageAll(idmapDir(stateDir, id))
	unbindNetns(filepath.Join(netnsDir(stateDir), id))
	for _, name := range confine.SystemAppArmor().HeldBy(appArmorHolder(id)) {
		releaseAppArmor(name, id)
	}
	os.RemoveAll(bundleDir(stateDir, id))
	return nil
}

// memfdNoexec is the setting that makes memfds non-executable, per pid
// namespace (Linux 6.3+).
const memfdNoexec = "/proc/sys/vm/memfd_noexec"

// noexecMemfds sets vm.memfd_noexec to 2 in the sandbox's pid namespace
// before the agent starts: no memfd can be executed there, so a payload
// written to memory cannot be run even where the whitelist allows execve
// (Landlock, which limits execution to the agent's files, does not govern
// memfds). The setting is the writer's pid namespace's, so a process of
// the host's root joins the sandbox's pid namespace to write it. A kernel
// without the setting, or a non-root caller (only the host's root may
// write /proc/sys), cannot: see memfdNoexecPossible.
func noexecMemfds(ctx context.Context, pid int) error {
	if !memfdNoexecPossible() {
		return nil
	}
	// Only the pid namespace is joined: /proc/sys is written by the host's
	// root, and the setting applies to the writer's pid namespace.
	ctx, cancel := context.WithTimeout(ctx, runcTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", "--pid=/proc/"+strconv.Itoa(pid)+"/ns/pid", "--", "/bin/sh", "-c", "echo 2 > "+memfdNoexec)
	if out, err := cmd.CombinedOutput(); err != nil {
		return &clawerr.Error{Code: clawerr.EPerm, Message: "cannot make memfds non-executable in the sandbox; the agent was not started",
			Err: fmt.Errorf("%w: %s", err, bytes.TrimSpace(out)), Hint: "util-linux's nsenter is needed"}
	}
	return nil
}

// memfdNoexecPossible reports whether clawos-run can make the sandbox's
// memfds non-executable: the kernel has vm.memfd_noexec (6.3+) and the
// caller is root.
func memfdNoexecPossible() bool {
	_, err := os.Stat(memfdNoexec)
	return err == nil && os.Geteuid() == 0
}
