package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/cli"
	"github.com/clawos/clawos-security/internal/version"
	"github.com/clawos/clawos-security/sandbox"
	"golang.org/x/sys/unix"
)

const progName = "clawos-run"

// Exit statuses of clawos-run's own failures, as podman and docker use them;
// the agent's own status passes through otherwise (128+N when it dies of
// signal N: 159 for a seccomp kill). The P1.7 code of a failure is in its
// message and, with --log-format json, in its P1.7 payload.
const (
	exitFailure     = 125 // clawos-run could not run the agent
	exitCannotExec  = 126
	exitNotFound    = 127
	exitUsage       = 125
	defaultStateDir = "/run/clawos"
)

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// config is everything the command line says: the sandbox's Config and
// what only the program does.
type config struct {
	sb                           sandbox.Config
	roBinds, binds, tmpfs, env   listFlag
	userns                       bool
	envFile, logFormat, logLevel string
	writeBundle, generate        string
	printSpec, check, version    bool
	quiet                        bool
	handOffAfter                 time.Duration
}

// defineFlags defines clawos-run's flags on fs, into c: the one
// definition --help, the manual page and the completion are made from.
func defineFlags(fs *flag.FlagSet, c *config) {
	s := &c.sb
	fs.StringVar(&s.Whitelist, "whitelist", "", "P1.2 whitelist (required)")
	fs.StringVar(&s.Runtime, "runtime", sandbox.DefaultRuntime, "OCI runtime: embedded (runc's libcontainer inside this binary), runc, or the path of a runc-compatible binary")
	fs.StringVar(&s.Rootfs, "rootfs", "", "root filesystem directory (default: a read-only view of the host's system directories)")
	fs.StringVar(&s.Bundle, "bundle", "", "an existing OCI bundle: its root, mounts and process are kept, ClawOS's confinement is applied to a copy of its config (its files are never modified); the command after -- is optional")
	fs.StringVar(&s.Workdir, "workdir", "", "a host directory made visible read-only at the same path and used as the working directory (default: the current directory, where that is safe)")
	fs.StringVar(&s.Chdir, "chdir", "", "the agent's working directory inside the sandbox (bubblewrap's --chdir): a path of the sandbox's own view, a --ro-bind or --bind destination for example; nothing of the host's is bound for it")
	fs.StringVar(&s.Baseline, "baseline", sandbox.DefaultBaseline, "measured calls added to the agent's whitelist: start, tokio, start,tokio or none")
	fs.StringVar(&s.Net, "net", "loopback", "network: none (no traffic at all), loopback (private namespace with only lo), pasta (private namespace with egress through passt's pasta, the host's loopback services at host.clawos.internal, DNS through the host's resolver; a non-root user needs /dev/net/tun usable) or host")
	fs.StringVar(&s.AppArmor, "apparmor", "auto", "AppArmor: auto (apply a generated profile where the kernel has AppArmor, warn where not), required (refuse to run without it) or off")
	fs.StringVar(&s.Landlock, "landlock", "auto", "Landlock exec restriction: auto (where the kernel has Landlock; refused without it when the whitelist allows execve, since what the agent may execute would be unrestricted), required (refuse to run without it) or off")
	fs.StringVar(&s.AppArmorPreset, "apparmor-preset", "", "P1.6 AppArmor preset to layer on the generated profile (clawos-agent-loop, clawos-wasm-daemon, clawos-kernel-svc)")
	fs.BoolVar(&s.TTY, "tty", false, "give the agent a terminal (a pty created in the sandbox; this terminal is put in raw mode)")
	fs.BoolVar(&c.userns, "userns", true, "run in a user namespace: root in the sandbox is an unprivileged host uid")
	fs.StringVar(&s.Slice, "slice", "", "P1.5 slice whose quotas apply (agents, wasm, kernel, worker, root)")
	fs.StringVar(&s.Hostname, "hostname", "", "hostname inside the sandbox (default clawos-agent)")
	fs.StringVar(&s.StateDir, "state-dir", defaultStateDir, "where bundles and runtime state live while agents run (for a non-root user: $XDG_RUNTIME_DIR/clawos or /tmp/clawos-UID)")
	fs.StringVar(&s.ID, "id", "", "container id (default: generated)")
	fs.StringVar(&s.PlanCache, "plan-cache", "", "the plan cache: whitelists clawos-policy validated, by content (default /var/cache/clawos/plans for root, ~/.cache/clawos/plans for a user; off: validate every time)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.quiet, "quiet", false, "log errors only (--log-level error)")
	fs.DurationVar(&s.KillAfter, "kill-after", sandbox.DefaultKillAfter, "after forwarding SIGINT, SIGTERM or SIGHUP, kill the agent if it has not exited (an agent is pid 1 of its namespace: the kernel drops signals it has no handler for)")
	fs.StringVar(&c.writeBundle, "write-bundle", "", "write the OCI bundle that would run to this new directory, and exit (for benchmarks and debugging)")
	fs.BoolVar(&s.MeasureRuntime, "measure-runtime", false, "measurement mode for test/baseline/measure-runtime.sh: the container-level filter logs every call instead of killing (the agent's own filter stays exact)")
	fs.BoolVar(&c.check, "check", false, "print what this host's kernel offers and which guarantees of docs/security.md hold here, and exit (non-zero where --apparmor required or --landlock required cannot be met)")
	fs.BoolVar(&c.printSpec, "print-spec", false, "print the OCI config and both seccomp stages that would run, and exit")
	fs.BoolVar(&s.RequireSignature, "require-signature", false, "refuse an unsigned whitelist even outside production")
	fs.StringVar(&s.Learn, "learn", "", "learn mode: run the agent unconfined by seccomp in the same sandbox, record every call of every thread and child, and write a signed P1.2 whitelist to this file (no --whitelist)")
	fs.StringVar(&s.Merge, "merge", "", "with --learn: union the learned whitelist with this one (another scenario's), keeping the stricter of two conflicting rules")
	fs.BoolVar(&s.Complain, "complain", false, "complain mode: what --whitelist would deny or kill is logged and allowed instead; the would-be violations are printed at exit and written to --report")
	fs.StringVar(&s.Report, "report", sandbox.DefaultReport, "with --complain: where the JSON report of would-be violations is written")
	fs.Var(&c.roBinds, "ro-bind", "bind SRC[:DST] read-only (repeatable)")
	fs.Var(&c.binds, "bind", "bind SRC[:DST] writable (repeatable)")
	fs.StringVar(&s.Workspace, "workspace", "", "a host directory bound writable at the same path and made the working directory, its .git (and the git directory a .git file names) kept read-only; what the agent writes there belongs to the caller (an idmapped mount as root)")
	fs.Var(&c.tmpfs, "tmpfs", "mount a private tmpfs at DST (repeatable)")
	fs.Var(&c.env, "env", "set K=V in the agent's environment, or K to pass the caller's value (refused when unset); repeatable. Nothing else of the caller's environment reaches the agent")
	fs.StringVar(&c.envFile, "env-file", "", "read K=V (or K, the caller's value) lines from this file into the agent's environment; # comments and blank lines are skipped")
	fs.BoolVar(&s.LearnFailed, "learn-failed", false, "with --learn: write the whitelist even when the agent exits with a non-zero status")
	fs.BoolVar(&s.Force, "force", false, "with --learn: replace an existing OUT (without --merge)")
	fs.BoolVar(&s.Init, "init", false, "keep clawos-init as the sandbox's pid 1, a minimal init (docker run --init): it reaps orphaned processes and forwards signals to the agent, which runs as its child under exactly its filter")
	fs.DurationVar(&c.handOffAfter, "hand-off-after", sandbox.DefaultHandOffAfter, "once the agent has run this long, clawos-run becomes the small static clawos-wait (same process) that waits for it, forwards signals and then cleans up through clawos-run again: a few hundred kilobytes held instead of clawos-run's megabytes (not with --tty, --learn, --complain, --runtime runc); negative: never")
	fs.StringVar(&c.generate, "generate", "", "print clawos-run's manual page (man) or bash completion (bash), generated from these flags, and exit")
	fs.BoolVar(&c.version, "version", false, "print the version (clawos-run, commit, Go, libseccomp, runc's libcontainer) and exit")
}

// command is clawos-run as package cli documents it.
func command() cli.Command {
	fs := flag.NewFlagSet(progName, flag.ContinueOnError)
	defineFlags(fs, &config{})
	return cli.Command{Name: progName, Summary: "run a command as a confined ClawOS agent", Synopsis: "[flags] -- CMD [ARGS...]",
		Description: "Runs CMD as a confined ClawOS agent and exits with its status (128+N if it dies of signal N; 159 = killed by seccomp). See docs/launcher.md and docs/security.md.",
		Flags:       fs}
}

func parseFlags(args []string, stdout, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet(progName, flag.ContinueOnError)
	// --help is asked for: to stdout (exit 0); a usage error's to stderr.
	usageOut := stderr
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" {
			usageOut = stdout
		}
	}
	fs.SetOutput(usageOut)
	fs.Usage = func() {
		fmt.Fprintf(usageOut, "usage: %s [flags] -- CMD [ARGS...]\n\nRuns CMD as a confined ClawOS agent and exits with its status (128+N if it dies of signal N; 159 = killed by seccomp).\n\nflags:\n", progName)
		fs.PrintDefaults()
	}
	defineFlags(fs, c)
	if err := fs.Parse(args); err != nil {
		return nil, &sandbox.UsageError{Err: err}
	}
	s := &c.sb
	s.Command = fs.Args()
	s.ROBinds, s.Binds, s.Tmpfs, s.NoUserNS = c.roBinds, c.binds, c.tmpfs, !c.userns
	if s.StateDir == defaultStateDir {
		s.StateDir = sandbox.DefaultStateDir(os.Geteuid())
	}
	if c.writeBundle != "" {
		s.BundleOnly, s.BundleDir = true, c.writeBundle
	}
	if c.check || c.version || c.generate != "" {
		return c, nil
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	env, err := sandbox.ResolveEnv(c.env, c.envFile, os.LookupEnv)
	if err != nil {
		return nil, &sandbox.UsageError{Err: err}
	}
	s.Env = env
	return c, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		return exitUsage
	}
	log, err := newLogger(stderr, c.logFormat, c.logLevel, c.quiet)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		return exitUsage
	}
	switch {
	case c.check:
		return checkHost(c, stdout, stderr)
	case c.generate != "":
		if err := cli.Generate(stdout, command(), c.generate, version.Module()); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", progName, err)
			return exitFailure
		}
		return 0
	case c.version:
		fmt.Fprintln(stdout, version.String(progName))
		return 0
	}
	status, err := launch(ctx, c, stdin, stdout, stderr, log)
	if err != nil {
		return failed(err, c.logFormat, stderr)
	}
	return status
}

// newLogger is clawos-run's logger on stderr.
func newLogger(stderr io.Writer, format, level string, quiet bool) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	if format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	l, err := logrus.ParseLevel(level)
	if err != nil || l > logrus.DebugLevel || l < logrus.ErrorLevel {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	if quiet {
		l = logrus.ErrorLevel
	}
	log.SetLevel(l)
	return log, nil
}

// failed prints err and returns clawos-run's exit status for it.
func failed(err error, logFormat string, stderr io.Writer) int {
	if logFormat == "json" {
		b, _ := json.Marshal(clawerr.PayloadOf(progName, err))
		fmt.Fprintf(stderr, "%s\n", b)
	} else {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
	}
	var usage *sandbox.UsageError
	switch {
	case errors.As(err, &usage):
		return exitUsage
	case errors.Is(err, sandbox.ErrNotFound):
		return exitNotFound
	}
	return exitFailure
}

// finishArg is the hidden first argument clawos-wait runs clawos-run with
// at the end of a handed-off run: LOG-FORMAT LOG-LEVEL, then what
// sandbox.FinishHandOff takes.
const finishArg = "__finish-hand-off"

// finish is clawos-run at the end of a handed-off run: it cleans up and
// exits with the agent's status.
func finish(ctx context.Context, args []string, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprintf(stderr, "%s: %s: want LOG-FORMAT LOG-LEVEL ...\n", progName, finishArg)
		return exitFailure
	}
	log, err := newLogger(stderr, args[0], args[1], false)
	if err != nil {
		return failed(err, args[0], stderr)
	}
	status, err := sandbox.FinishHandOff(ctx, args[2:], log)
	if err != nil {
		return failed(err, args[0], stderr)
	}
	return status
}

// launch plans the sandbox and prints it, writes its bundle or runs it,
// forwarding SIGINT, SIGTERM and SIGHUP to the agent.
func launch(ctx context.Context, c *config, stdin io.Reader, stdout, stderr io.Writer, log *logrus.Logger) (int, error) {
	if !c.printSpec && c.writeBundle == "" {
		sandbox.WarmCgroups()
	}
	host, err := sandbox.ProbeHost("")
	if err != nil {
		return 0, err
	}
	host.Stdin = stdin
	plan, err := sandbox.NewPlan(c.sb, host, log)
	if err != nil {
		return 0, err
	}
	if c.printSpec {
		return 0, plan.PrintSpec(stdout)
	}
	rt, err := sandbox.NewRuntime(c.sb.Runtime, c.sb.StateDir, log)
	if err != nil {
		return 0, err
	}
	if c.writeBundle != "" {
		return 0, sandbox.WriteBundle(plan, rt)
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP)
	defer signal.Stop(sigs)
	s, err := sandbox.Start(ctx, plan, rt, sandbox.Stdio{In: stdin, Out: stdout, Err: stderr})
	if err != nil {
		return 0, err
	}
	return s.Supervise(sigs, stderr, handOff(c, log))
}

// handOff is how the sandbox is handed to clawos-wait, nil for never (or
// when it is not installed).
func handOff(c *config, log *logrus.Logger) *sandbox.HandOff {
	if c.handOffAfter < 0 {
		return nil
	}
	waiter, err := sandbox.FindWaiter()
	if err != nil {
		log.WithError(err).Debug("no hand-off")
		return nil
	}
	// The clean-up logs as this run does: the logger's level, --quiet
	// applied.
	return &sandbox.HandOff{Waiter: waiter, Args: []string{progName, finishArg, c.logFormat, log.GetLevel().String()}, After: c.handOffAfter}
}
