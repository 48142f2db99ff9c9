package sandbox

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/platform"
)

// HostAlias is the name the sandbox's /etc/hosts gives the host under
// --net pasta: pasta maps its gateway address to the host's loopback
// (podman's host.containers.internal convention).
const HostAlias = "host.clawos.internal"

// DNSForward is the address the sandbox's /etc/resolv.conf names under
// --net pasta: pasta forwards what is sent to it on port 53 to the first
// nameserver of the host's /etc/resolv.conf (podman's choice of address).
const DNSForward = "169.254.1.1"

// pastaReady bounds the wait for pasta to configure the namespace.
const pastaReady = 5 * time.Second

// pasta is the pasta process that gives a sandbox's network namespace its
// egress, and the file its namespace is bound to for it.
type pasta struct {
	cmd    *exec.Cmd
	nsFile string
	// stderr is pasta's, a file without a name (no pipe that this
	// process must drain: the run can be handed to clawos-wait).
	stderr *os.File
}

// netnsDir is where a sandbox's network namespace is bound for pasta
// (pasta joins a namespace by path, and quits when the path goes away).
func netnsDir(stateDir string) string { return filepath.Join(stateDir, "netns") }

// startPasta starts pasta on the network namespace of pid: for root,
// bound to a file under the state directory, pasta staying root (--runas
// 0:0: it would drop to nobody otherwise and could not join the
// namespace); for a user, as the user in the sandbox's user namespace
// (which needs the tun device usable by the user). The namespace gets the
// host's addresses and routes (--config-net), DNS at DNSForward, no port
// of the host is forwarded into it nor its loopback to the host's (-t, -u,
// -T, -U none), and the gateway address reaches the host's loopback.
// pasta dies with clawos-run (parent-death signal from the sandbox's
// launcher thread, onThread), is killed at the end of the run, and quits
// when root's namespace file is removed; it is ready once the namespace
// has its default route.
func startPasta(stateDir, id string, pid int, onThread func(func() error) error) (*pasta, error) {
	bin, err := exec.LookPath("pasta")
	if err != nil {
		return nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: "--net pasta needs passt's pasta, which is not installed; the agent was not started", Err: err,
			Hint: "apt-get install passt, or another --net mode"}
	}
	common := []string{"--config-net", "--dns-forward", DNSForward, "--foreground", "--quiet", "-t", "none", "-u", "none", "-T", "none", "-U", "none"}
	p := &pasta{}
	if os.Geteuid() == 0 {
		if err := p.bindNetns(stateDir, id, pid); err != nil {
			return nil, err
		}
		p.cmd = exec.Command(bin, append([]string{"--runas", "0:0", "--netns", p.nsFile}, common...)...)
	} else {
		// A user's pasta joins the sandbox's user namespace, which the
		// user owns, for the capabilities over its network namespace, and
		// opens the tun device there.
		if err := platform.TunUsable(platform.TunDevice); err != nil {
			return nil, &clawerr.Error{Code: clawerr.EPerm, Message: "--net pasta as a non-root user needs " + platform.TunDevice + " readable and writable by the user; the agent was not started",
				Err: err, Hint: "Debian's udev makes it 0666 (KERNEL==\"tun\", MODE=\"0666\"); on a host without udev: chmod 0666 " + platform.TunDevice + ", or run as root"}
		}
		ns := "/proc/" + strconv.Itoa(pid) + "/ns/"
		p.cmd = exec.Command(bin, append([]string{"--userns", ns + "user", "--netns", ns + "net"}, common...)...)
	}
	if p.stderr, err = anonymousFile(); err != nil {
		p.release()
		return nil, err
	}
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := onThread(p.cmd.Start); err != nil {
		p.release()
		return nil, clawerr.Wrap(clawerr.EInternal, err, "start pasta")
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	for deadline := time.Now().Add(pastaReady); ; time.Sleep(5 * time.Millisecond) {
		if _, err := platform.DefaultGateway("/proc/" + strconv.Itoa(pid) + "/net/route"); err == nil {
			return p, nil
		}
		select {
		case <-exited:
			p.release()
			return nil, &clawerr.Error{Code: clawerr.EIO, Message: "pasta exited before it configured the sandbox's network; the agent was not started",
				Err: fmt.Errorf("%s", bytes.TrimSpace(p.said()))}
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, &clawerr.Error{Code: clawerr.ETimeout, Message: "pasta did not configure the sandbox's network in time; the agent was not started"}
		}
	}
}

// stop kills pasta and removes the namespace's file.
func (p *pasta) stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	p.release()
}

// bindNetns binds the network namespace of pid to a file under the state
// directory (root: pasta, which drops to nobody otherwise, is told to stay
// root, and quits when the file goes).
func (p *pasta) bindNetns(stateDir, id string, pid int) error {
	dir := netnsDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "pasta's namespace file")
	}
	p.nsFile = filepath.Join(dir, id)
	if err := os.WriteFile(p.nsFile, nil, 0o600); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "pasta's namespace file")
	}
	if err := unix.Mount("/proc/"+strconv.Itoa(pid)+"/ns/net", p.nsFile, "", unix.MS_BIND, ""); err != nil {
		os.Remove(p.nsFile)
		return clawerr.Wrap(clawerr.EIO, err, "bind the sandbox's network namespace for pasta")
	}
	return nil
}

// release removes the namespace's file, if any (pasta quits when it
// goes), and closes pasta's stderr.
func (p *pasta) release() {
	if p.nsFile != "" {
		unbindNetns(p.nsFile)
	}
	if p.stderr != nil {
		p.stderr.Close()
	}
}

// said is what pasta wrote to its stderr (bounded).
func (p *pasta) said() []byte {
	b := make([]byte, 4096)
	n, _ := p.stderr.ReadAt(b, 0)
	return b[:n]
}

// anonymousFile is a new memory file with no name.
func anonymousFile() (*os.File, error) {
	fd, err := unix.MemfdCreate("clawos-pasta-stderr", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "pasta's stderr")
	}
	return os.NewFile(uintptr(fd), "pasta-stderr"), nil
}

// unbindNetns detaches and removes a namespace file of netnsDir.
func unbindNetns(path string) {
	unix.Unmount(path, unix.MNT_DETACH)
	os.Remove(path)
}

// hostsFile is the sandbox's /etc/hosts under --net pasta: the host's,
// and HostAlias at gw.
func hostsFile(host []byte, gw netip.Addr) []byte {
	out := append([]byte{}, host...)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, fmt.Sprintf("%s\t%s\n", gw, HostAlias)...)
}

// resolvFile is the sandbox's /etc/resolv.conf under --net pasta: the
// host's search and options lines, and DNSForward as the only nameserver.
func resolvFile(host []byte) []byte {
	out := []byte("nameserver " + DNSForward + "\n")
	for _, l := range strings.Split(string(host), "\n") {
		if f := strings.Fields(l); len(f) > 0 && (f[0] == "search" || f[0] == "domain" || f[0] == "options") {
			out = append(out, strings.Join(f, " ")+"\n"...)
		}
	}
	return out
}
