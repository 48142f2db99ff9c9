package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/cli"
	"github.com/clawos/clawos-security/internal/version"
	"github.com/clawos/clawos-security/namespaces"
	"github.com/clawos/clawos-security/translate"
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

// config is everything the command line says.
type config struct {
	whitelist, runtime, rootfs, workdir, baseline, net, slice, hostname, stateDir, id string
	logFormat, writeBundle, bundle, apparmorMode, apparmorPreset, landlockMode        string
	learn, merge, report                                                              string
	killAfter                                                                         time.Duration
	userns, printSpec, requireSig, measureRuntime, tty, complain, check               bool
	learnFailed, force, version, init                                                 bool
	generate                                                                          string
	envFile, chdir, logLevel, workspace                                               string
	quiet                                                                             bool
	roBinds, binds, tmpfs, env                                                        listFlag
	cmd                                                                               []string
}

// defineFlags defines clawos-run's flags on fs, into c: the one
// definition --help, the manual page and the completion are made from.
func defineFlags(fs *flag.FlagSet, c *config) {
	fs.StringVar(&c.whitelist, "whitelist", "", "P1.2 whitelist (required)")
	fs.StringVar(&c.runtime, "runtime", "embedded", "OCI runtime: embedded (runc's libcontainer inside this binary), runc, or the path of a runc-compatible binary")
	fs.StringVar(&c.rootfs, "rootfs", "", "root filesystem directory (default: a read-only view of the host's system directories)")
	fs.StringVar(&c.bundle, "bundle", "", "an existing OCI bundle: its root, mounts and process are kept, ClawOS's confinement is applied to a copy of its config (its files are never modified); the command after -- is optional")
	fs.StringVar(&c.workdir, "workdir", "", "a host directory made visible read-only at the same path and used as the working directory (default: the current directory, where that is safe)")
	fs.StringVar(&c.chdir, "chdir", "", "the agent's working directory inside the sandbox (bubblewrap's --chdir): a path of the sandbox's own view, a --ro-bind or --bind destination for example; nothing of the host's is bound for it")
	fs.StringVar(&c.baseline, "baseline", "start", "measured calls added to the agent's whitelist: start, tokio, start,tokio or none")
	fs.StringVar(&c.net, "net", "loopback", "network: none (no traffic at all), loopback (private namespace with only lo) or host")
	fs.StringVar(&c.apparmorMode, "apparmor", "auto", "AppArmor: auto (apply a generated profile where the kernel has AppArmor, warn where not), required (refuse to run without it) or off")
	fs.StringVar(&c.landlockMode, "landlock", "auto", "Landlock exec restriction: auto (where the kernel has Landlock; refused without it when the whitelist allows execve, since what the agent may execute would be unrestricted), required (refuse to run without it) or off")
	fs.StringVar(&c.apparmorPreset, "apparmor-preset", "", "P1.6 AppArmor preset to layer on the generated profile (clawos-agent-loop, clawos-wasm-daemon, clawos-kernel-svc)")
	fs.BoolVar(&c.tty, "tty", false, "give the agent a terminal (a pty created in the sandbox; this terminal is put in raw mode)")
	fs.BoolVar(&c.userns, "userns", true, "run in a user namespace: root in the sandbox is an unprivileged host uid")
	fs.StringVar(&c.slice, "slice", "", "P1.5 slice whose quotas apply (agents, wasm, kernel, worker, root)")
	fs.StringVar(&c.hostname, "hostname", "", "hostname inside the sandbox (default clawos-agent)")
	fs.StringVar(&c.stateDir, "state-dir", defaultStateDir, "where bundles and runtime state live while agents run (for a non-root user: $XDG_RUNTIME_DIR/clawos or /tmp/clawos-UID)")
	fs.StringVar(&c.id, "id", "", "container id (default: generated)")
	fs.StringVar(&c.logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.BoolVar(&c.quiet, "quiet", false, "log errors only (--log-level error)")
	fs.DurationVar(&c.killAfter, "kill-after", 10*time.Second, "after forwarding SIGINT, SIGTERM or SIGHUP, kill the agent if it has not exited (an agent is pid 1 of its namespace: the kernel drops signals it has no handler for)")
	fs.StringVar(&c.writeBundle, "write-bundle", "", "write the OCI bundle that would run to this new directory, and exit (for benchmarks and debugging)")
	fs.BoolVar(&c.measureRuntime, "measure-runtime", false, "measurement mode for test/baseline/measure-runtime.sh: the container-level filter logs every call instead of killing (the agent's own filter stays exact)")
	fs.BoolVar(&c.check, "check", false, "print what this host's kernel offers and which guarantees of docs/security.md hold here, and exit (non-zero where --apparmor required or --landlock required cannot be met)")
	fs.BoolVar(&c.printSpec, "print-spec", false, "print the OCI config and both seccomp stages that would run, and exit")
	fs.BoolVar(&c.requireSig, "require-signature", false, "refuse an unsigned whitelist even outside production")
	fs.StringVar(&c.learn, "learn", "", "learn mode: run the agent unconfined by seccomp in the same sandbox, record every call of every thread and child, and write a signed P1.2 whitelist to this file (no --whitelist)")
	fs.StringVar(&c.merge, "merge", "", "with --learn: union the learned whitelist with this one (another scenario's), keeping the stricter of two conflicting rules")
	fs.BoolVar(&c.complain, "complain", false, "complain mode: what --whitelist would deny or kill is logged and allowed instead; the would-be violations are printed at exit and written to --report")
	fs.StringVar(&c.report, "report", "clawos-complain.json", "with --complain: where the JSON report of would-be violations is written")
	fs.Var(&c.roBinds, "ro-bind", "bind SRC[:DST] read-only (repeatable)")
	fs.Var(&c.binds, "bind", "bind SRC[:DST] writable (repeatable)")
	fs.StringVar(&c.workspace, "workspace", "", "a host directory bound writable at the same path and made the working directory, its .git (and the git directory a .git file names) kept read-only; what the agent writes there belongs to the caller (an idmapped mount as root)")
	fs.Var(&c.tmpfs, "tmpfs", "mount a private tmpfs at DST (repeatable)")
	fs.Var(&c.env, "env", "set K=V in the agent's environment, or K to pass the caller's value (refused when unset); repeatable. Nothing else of the caller's environment reaches the agent")
	fs.StringVar(&c.envFile, "env-file", "", "read K=V (or K, the caller's value) lines from this file into the agent's environment; # comments and blank lines are skipped")
	fs.BoolVar(&c.learnFailed, "learn-failed", false, "with --learn: write the whitelist even when the agent exits with a non-zero status")
	fs.BoolVar(&c.force, "force", false, "with --learn: replace an existing OUT (without --merge)")
	fs.BoolVar(&c.init, "init", false, "keep clawos-init as the sandbox's pid 1, a minimal init (docker run --init): it reaps orphaned processes and forwards signals to the agent, which runs as its child under exactly its filter")
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
		return nil, &usageError{err}
	}
	c.cmd = fs.Args()
	if c.stateDir == defaultStateDir && os.Geteuid() != 0 {
		c.stateDir = rootlessStateDir()
	}
	if c.check || c.version || c.generate != "" {
		return c, nil
	}
	switch {
	case c.learn != "" && (c.whitelist != "" || c.complain):
		return nil, &usageError{errors.New("--learn records a new whitelist: not with --whitelist or --complain (use --merge to add to one)")}
	case c.merge != "" && c.learn == "":
		return nil, &usageError{errors.New("--merge goes with --learn")}
	case c.init && (c.learn != "" || c.complain):
		return nil, &usageError{errors.New("--init does not go with --learn or --complain: their supervisor takes the filter's listener from the sandbox's pid 1")}
	case (c.learnFailed || c.force) && c.learn == "":
		return nil, &usageError{errors.New("--learn-failed and --force go with --learn")}
	case c.learn == "" && c.whitelist == "":
		return nil, &usageError{errors.New("--whitelist is required: an agent never runs unconfined (or --learn OUT.json to record one)")}
	}
	if len(c.cmd) == 0 && c.bundle == "" {
		return nil, &usageError{errors.New("no command: want -- CMD [ARGS...]")}
	}
	if c.workspace != "" && (c.workdir != "" || c.rootfs != "" || c.bundle != "") {
		return nil, &usageError{errors.New("--workspace excludes --workdir, --rootfs and --bundle")}
	}
	if c.chdir != "" && (c.workdir != "" || !filepath.IsAbs(c.chdir)) {
		return nil, &usageError{errors.New("--chdir takes an absolute path inside the sandbox, and excludes --workdir")}
	}
	if c.bundle != "" && c.rootfs != "" {
		return nil, &usageError{errors.New("--bundle and --rootfs exclude each other: the bundle has its root")}
	}
	if c.learn != "" && c.merge != c.learn && !c.force {
		if _, err := os.Stat(c.learn); err == nil {
			return nil, &usageError{fmt.Errorf("--learn %s: the file exists; pass --merge %s to add this run to it, or --force to replace it", c.learn, c.learn)}
		}
	}
	env, err := agentEnv(c.env, c.envFile, os.LookupEnv)
	if err != nil {
		return nil, &usageError{err}
	}
	c.env = env
	return c, nil
}

// rootlessStateDir is where a non-root user's sandboxes live.
func rootlessStateDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "clawos")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("clawos-%d", os.Geteuid()))
}

type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	c, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		return exitUsage
	}
	if c.logFormat == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	}
	level, err := logrus.ParseLevel(c.logLevel)
	if err != nil || level > logrus.DebugLevel || level < logrus.ErrorLevel {
		fmt.Fprintf(stderr, "%s: --log-level %q: want debug, info, warn or error\n", progName, c.logLevel)
		return exitUsage
	}
	if c.quiet {
		level = logrus.ErrorLevel
	}
	log.SetLevel(level)
	if c.check {
		return checkHost(c, stdout, stderr)
	}
	if c.generate != "" {
		if err := cli.Generate(stdout, command(), c.generate, version.Module()); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", progName, err)
			return exitFailure
		}
		return 0
	}
	if c.version {
		fmt.Fprintln(stdout, version.String(progName))
		return 0
	}
	l := &launcher{cfg: c, log: log, stdin: stdin, stdout: stdout, stderr: stderr}
	status, err := l.launch(ctx)
	if err != nil {
		if c.logFormat == "json" {
			b, _ := json.Marshal(clawerr.PayloadOf(progName, err))
			fmt.Fprintf(stderr, "%s\n", b)
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		}
		var nf *notFoundError
		if errors.As(err, &nf) {
			return exitNotFound
		}
		return exitFailure
	}
	return status
}

type notFoundError struct{ error }

func (n *notFoundError) Unwrap() error { return n.error }

// options turns flags into translation and isolation options.
func (c *config) options() (translate.Options, error) {
	bl, err := translate.ParseBaselines(c.baseline)
	if err != nil {
		return translate.Options{}, err
	}
	return translate.Options{RequireSignature: c.requireSig, Baselines: bl, InitReaper: c.init}, nil
}

func (c *config) netMode() (namespaces.Net, error) {
	for _, n := range namespaces.KnownNets() {
		if string(n) == c.net {
			return n, nil
		}
	}
	return "", &usageError{fmt.Errorf("--net %q: want none, loopback or host", c.net)}
}

// agentEnv is the agent's environment from --env and --env-file: K=V as
// given, K alone the caller's value (refused when the caller has none).
func agentEnv(flags []string, file string, lookup func(string) (string, bool)) ([]string, error) {
	entries := append([]string{}, flags...)
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--env-file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line != "" && !strings.HasPrefix(line, "#") {
				entries = append(entries, line)
			}
		}
	}
	var out []string
	for _, e := range entries {
		k, _, hasVal := strings.Cut(e, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env %q: want K=V or K", e)
		}
		if !hasVal {
			v, ok := lookup(k)
			if !ok {
				return nil, fmt.Errorf("--env %s: %s is not set in clawos-run's environment", k, k)
			}
			e = k + "=" + v
		}
		out = append(out, e)
	}
	return out, nil
}
