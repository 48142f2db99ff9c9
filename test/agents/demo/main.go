// Command clawos-demo shows a whitelist at work: for each attempt it runs
// clawos-probe as a sandboxed agent under clawos-run (one sandbox per
// attempt, since a kill ends the agent) and prints what the whitelist says,
// what the compiled BPF predicts, and what the kernel did.
//
// It exits 0 only when the kernel agreed with the prediction for every
// attempt.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"github.com/clawos/clawos-security/internal/confine"
	"github.com/clawos/clawos-security/internal/platform"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

type attempt struct {
	what string   // in words
	call string   // syscall name, "int80" or "connect"
	args []uint64 // raw arguments
	i386 int      // i386 number for int80
	port int      // for connect
}

var attempts = []attempt{
	{what: "getpid()", call: "getpid"},
	{what: "write(1, \"\", 0)", call: "write", args: []uint64{1, 0, 0}},
	{what: "socket(AF_INET, SOCK_STREAM)", call: "socket", args: []uint64{unix.AF_INET, unix.SOCK_STREAM}},
	{what: "socket(AF_INET6, SOCK_DGRAM)", call: "socket", args: []uint64{unix.AF_INET6, unix.SOCK_DGRAM}},
	{what: "socket(AF_UNIX, SOCK_STREAM)", call: "socket", args: []uint64{unix.AF_UNIX, unix.SOCK_STREAM}},
	{what: "socket(AF_NETLINK, SOCK_RAW)", call: "socket", args: []uint64{unix.AF_NETLINK, unix.SOCK_RAW}},
	{what: "socket(AF_INET, SOCK_RAW)", call: "socket", args: []uint64{unix.AF_INET, unix.SOCK_RAW, 1}},
	{what: "clone3(NULL, 0)", call: "clone3"},
	{what: "getuid()", call: "getuid"},
	{what: "setuid(0)", call: "setuid"},
	{what: "ptrace(PTRACE_TRACEME)", call: "ptrace"},
	{what: "unshare(CLONE_NEWUSER)", call: "unshare", args: []uint64{unix.CLONE_NEWUSER}},
	{what: "mount(NULL, NULL, NULL)", call: "mount"},
	{what: "bpf(0, NULL, 0)", call: "bpf"},
	{what: "io_uring_setup(1, NULL)", call: "io_uring_setup", args: []uint64{1}},
	{what: "i386 getpid via int 0x80", call: "int80", i386: 20},
	{what: "connect 127.0.0.1:5432", call: "connect", port: 5432},
	{what: "connect 127.0.0.1:8080", call: "connect", port: 8080},
}

func main() {
	code, err := run(os.Args[1:], os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "clawos-demo:", err)
	}
	os.Exit(code)
}

func run(args []string, out io.Writer) (int, error) {
	fs := flag.NewFlagSet("clawos-demo", flag.ContinueOnError)
	wlPath := fs.String("whitelist", "examples/ironclaw.whitelist.json", "P1.2 whitelist")
	probe := fs.String("probe", "bin/clawos-probe", "the clawos-probe binary")
	launcher := fs.String("run", "bin/clawos-run", "the clawos-run binary")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	raw, err := translate.ReadFile(*wlPath, os.Stdin)
	if err != nil {
		return 1, err
	}
	v, err := schema.NewValidator()
	if err != nil {
		return 1, err
	}
	wl, rep := v.Validate(raw, translate.Options{})
	for _, d := range rep.Diagnostics {
		fmt.Fprintln(out, d)
	}
	if err := rep.Err(); err != nil {
		return 1, err
	}
	p, err := translate.Translate(wl, translate.Options{})
	if err != nil {
		return 1, err
	}
	prog, err := seccomp.Compile(p.Seccomp)
	if err != nil {
		return 1, err
	}
	ev, err := seccomp.NewEvaluator(prog)
	if err != nil {
		return 1, err
	}
	status, err := sandboxed(*launcher, *wlPath, *probe, "status")
	if err != nil {
		return 1, err
	}
	sig, err := translate.VerifySignature(raw, wl.Signature)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(out, "whitelist %s (%s, signature %s): %d BPF instructions for %s, default action kill process\n",
		*wlPath, wl.WhitelistID, sig, prog.Len(), p.Arch)
	fmt.Fprintf(out, "the agent sees itself as: %s\n\n", summarize(status.stdout))

	rules := map[string]translate.Origin{}
	for _, o := range p.Origins {
		rules[o.Syscall] = o
	}
	hasIA32, err := platform.IA32(*probe)
	if err != nil {
		return 1, err
	}
	// clawos-run adds Landlock's network rules where the kernel has them.
	landlockNet := platform.LandlockABI() >= confine.LandlockNetABI
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ATTEMPT\tWHITELIST RULE\tPREDICTED (BPF)\tKERNEL\tOUTCOME")
	mismatches := 0
	for _, a := range attempts {
		in := seccomp.Input{Arch: p.Arch.Audit()}
		var probeArgs []string
		rule := "not listed: kill"
		if a.call == "connect" {
			res, err := sandboxed(*launcher, *wlPath, *probe, "connect", "127.0.0.1", fmt.Sprint(a.port))
			if err != nil {
				return 1, err
			}
			allowed := contains(p.Network.ConnectPorts, a.port)
			rule, predicted := "port not in the policy", "refused by the port policy"
			if allowed {
				rule, predicted = "port allowed", "allowed (nothing listens here)"
			}
			outcome, agrees := "connection refused by the stack", allowed && res.errno == int(unix.ECONNREFUSED) && !res.portRefusal
			switch {
			case allowed:
			case landlockNet:
				// Landlock refuses the connect itself, before a packet
				// leaves: nftables, behind it, counts nothing.
				outcome, agrees = "port refused (Landlock, EACCES)", res.errno == int(unix.EACCES) && !res.portRefusal
			default:
				outcome, agrees = "port refused (nftables counted it)", res.errno == int(unix.ECONNREFUSED) && res.portRefusal
			}
			if !agrees {
				mismatches++
				outcome += "  <-- MISMATCH"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.what, rule, predicted, res, outcome)
			continue
		}
		if a.call == "int80" {
			in.Arch, in.Nr = 0x40000003, int32(a.i386)
			probeArgs = append(probeArgs, "int80", fmt.Sprint(a.i386))
			rule = "other architecture: kill"
		} else {
			nr, ok := p.Arch.SyscallNumber(a.call)
			if !ok {
				return 1, fmt.Errorf("%s is not a syscall on %s", a.call, p.Arch)
			}
			in.Nr = int32(nr)
			probeArgs = append(probeArgs, "call", fmt.Sprint(nr))
			if o, ok := rules[a.call]; ok {
				rule = o.Verdict
			}
		}
		for i, x := range a.args {
			in.Args[i] = x
			probeArgs = append(probeArgs, fmt.Sprint(x))
		}
		predicted := ev.Evaluate(in)
		kernel, err := sandboxed(*launcher, *wlPath, *probe, probeArgs...)
		if err != nil {
			return 1, err
		}
		outcome, agrees := judge(predicted, kernel)
		if a.call == "int80" && !hasIA32 {
			// The kernel refuses the call before seccomp sees it: the
			// process dies of SIGSEGV with or without a filter. The row
			// still shows what the program would do where ia32 calls
			// reach it.
			outcome = platform.IA32Refused
			agrees = kernel.signal == unix.SIGSEGV && predicted.Action() == seccomp.RetKillProcess
		}
		if !agrees {
			mismatches++
			outcome += "  <-- MISMATCH"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", a.what, shorten(rule, 60), predicted, kernel, outcome)
	}
	if err := tw.Flush(); err != nil {
		return 1, err
	}
	if p.Network.Restricted() {
		fmt.Fprintf(out, "\nport restrictions: connect only to ports %v, enforced by nftables in the agent's own network namespace\n(seccomp cannot read a sockaddr; it limits socket() to AF_INET/AF_INET6 stream and datagram).\n",
			p.Network.ConnectPorts)
		if landlockNet {
			fmt.Fprintln(out, "This kernel has Landlock's network rules (ABI 4+): clawos-init holds TCP connect to the same ports, a second layer that refuses first.")
		}
	}
	if mismatches > 0 {
		return 1, fmt.Errorf("the kernel disagreed with the compiled program %d time(s)", mismatches)
	}
	fmt.Fprintf(out, "\nthe kernel agreed with the compiled program on all %d attempts\n", len(attempts))
	return 0, nil
}

// kernelResult is what happened to one sandboxed probe.
type kernelResult struct {
	signal      syscall.Signal
	errno       int
	stdout      string
	portRefusal bool // clawos-run reported refusals by the port policy
}

func (k kernelResult) String() string {
	switch {
	case k.signal != 0:
		return "killed by " + unix.SignalName(k.signal)
	case k.errno == 0:
		return "returned"
	}
	return "failed " + unix.ErrnoName(syscall.Errno(k.errno))
}

// sandboxed runs the probe as an agent under clawos-run and reads its exit
// status (128+N for signal N) and clawos-run's JSON log.
func sandboxed(launcher, whitelist, probe string, args ...string) (kernelResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, launcher, append([]string{"--log-format", "json", "--whitelist", whitelist, "--", probe}, args...)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := kernelResult{stdout: stdout.String(), portRefusal: strings.Contains(stderr.String(), "refused_packets")}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code := ee.ExitCode()
		switch {
		case code >= 125 && code <= 127:
			return res, fmt.Errorf("clawos-run %v failed: %s", args, stderr.String())
		case code > 128:
			res.signal = syscall.Signal(code - 128)
		default:
			res.errno = code
		}
	default:
		return res, fmt.Errorf("run %s: %w", launcher, err)
	}
	return res, nil
}

// summarize picks the lines of `clawos-probe status` that describe the
// sandbox.
func summarize(status string) string {
	var parts []string
	for _, line := range strings.Split(status, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 2 && f[0] == "pid":
			parts = append(parts, "pid "+f[1])
		case len(f) == 2 && (f[0] == "NoNewPrivs:" || f[0] == "CapEff:" || f[0] == "Seccomp_filters:"):
			parts = append(parts, strings.TrimSuffix(f[0], ":")+" "+f[1])
		case len(f) == 4 && f[0] == "uid_map":
			parts = append(parts, "uid "+f[1]+" = host uid "+f[2])
		case len(f) == 2 && f[0] == "iface":
			parts = append(parts, "interface "+f[1])
		}
	}
	return strings.Join(parts, ", ")
}

func contains(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// judge says what the attempt's outcome means, and whether the kernel did
// what the compiled program predicted. An allowed call may still fail in the
// kernel (bad arguments), but never with the filter's own answer.
func judge(v seccomp.Verdict, k kernelResult) (string, bool) {
	switch v.Action() {
	case seccomp.RetAllow:
		return "allowed", k.signal == 0
	case seccomp.RetErrno:
		name := unix.ErrnoName(syscall.Errno(v.Data()))
		return "denied with " + name, k.signal == 0 && k.errno == int(v.Data())
	case seccomp.RetKillProcess:
		return "agent killed", k.signal == unix.SIGSYS
	}
	return v.String(), false
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.TrimSpace(s[:n-3]) + "..."
}
