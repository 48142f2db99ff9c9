// Helpers both runtimes use: the bundle on disk, the port rules and the
// signal guard around the agent, its exit status, and stale sandboxes.

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

func bundleDir(stateDir, id string) string { return filepath.Join(stateDir, "bundles", id) }

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
			sb.refused = reportRefusals(held, sb.ports.Complain, log)
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
func installPolicy(ctx context.Context, pid int, p *namespaces.PortPolicy, log *logrus.Logger) (*heldNS, error) {
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

// reportRefusals logs and returns how many packets the port policy refused
// (or, complaining, would have refused).
func reportRefusals(ns *heldNS, complain bool, log *logrus.Logger) int {
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

// writeBundle writes config.json, the init and the agent's filter, and the
// empty root with its mount points (created here, as root, because runc's
// init creates them as the sandbox's mapped root otherwise).
func writeBundle(dir string, sb *sandbox) error {
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
		for _, p := range namespaces.SortedLinks(sb.links) {
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
	return atomicfile.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o600)
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
