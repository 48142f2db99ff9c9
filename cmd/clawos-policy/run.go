package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/cli"
	"github.com/clawos/clawos-security/internal/version"
)

const progName = "clawos-policy"

// Exit statuses besides the P1.7 ones (clawerr.Code.ExitStatus).
const (
	exitOK    = 0
	exitUsage = 2
)

// env is what every command gets: its streams, its logger and the global
// output choice. There is no global state.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	log    *logrus.Logger
	json   bool
}

// command is one subcommand. Every subcommand is listed in commands.
type command struct {
	name    string
	args    string
	summary string
	flags   func(fs *flag.FlagSet) func(e *env, args []string) error
}

// commands is the one table of subcommands.
var commands = []command{
	{"validate", "WHITELIST", "check a whitelist against the P1.2 schema and the semantic checks and lints", validateCmd},
	{"sign", "WHITELIST", "write the whitelist with a correct signature (SHA-256 of its RFC 8785 canonical form)", signCmd},
	{"translate", "WHITELIST", "print the OCI linux.seccomp section (or a whole OCI config with --spec)", translateCmd},
	{"explain", "WHITELIST [SYSCALL]", "print the verdict of every syscall and where it comes from, or evaluate one call", explainCmd},
	{"compile", "WHITELIST", "compile the BPF program: instruction count, listing, raw bytes", compileCmd},
	{"apparmor", "WHITELIST", "print the AppArmor profile generated from the whitelist (P1.6 presets with --preset)", apparmorCmd},
	{"diff", "OLD NEW", "show what NEW allows that OLD does not and the reverse: added, removed and changed rules", diffCmd},
}

// cliCommand is clawos-policy as package cli documents it: the global
// flags and every command's, from the same definitions.
func cliCommand(global *flag.FlagSet) cli.Command {
	c := cli.Command{Name: progName, Summary: "validate, sign, translate, explain and compile P1.2 whitelists", Synopsis: "[flags] COMMAND [flags] ARGS",
		Description: "Exit status: 0 success, 2 usage error, 10+N failure with P1.7 code N (14 = EPERM, policy refused). See docs/.", Flags: global}
	for _, cmd := range commands {
		fs := flag.NewFlagSet(progName+" "+cmd.name, flag.ContinueOnError)
		fs.Bool("json", false, "machine-readable JSON output")
		cmd.flags(fs)
		c.Sub = append(c.Sub, cli.Command{Name: cmd.name, Synopsis: "[flags] " + cmd.args, Summary: cmd.summary, Flags: fs})
	}
	return c
}

// usageError is a mistake on the command line (exit 2).
type usageError struct{ msg string }

func (u *usageError) Error() string { return u.msg }

// run is the whole program: it parses args, runs one command and returns the
// exit status. Errors are printed here, once.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, log: logrus.New()}
	e.log.SetOutput(stderr)
	global := flag.NewFlagSet(progName, flag.ContinueOnError)
	global.SetOutput(io.Discard)
	logFormat := global.String("log-format", "text", "log format: text or json")
	logLevel := global.String("log-level", "warning", "log level: debug, info, warning, error")
	showVersion := global.Bool("version", false, "print the version and exit")
	generate := global.String("generate", "", "print the manual page (man) or bash completion (bash), generated from the flags, and exit")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout, global)
			return exitOK
		}
		return e.fail(&usageError{err.Error()})
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String(progName))
		return exitOK
	}
	if *generate != "" {
		if err := cli.Generate(stdout, cliCommand(global), *generate, version.Module()); err != nil {
			return e.fail(&usageError{err.Error()})
		}
		return exitOK
	}
	switch *logFormat {
	case "text":
		e.log.SetFormatter(&logrus.TextFormatter{DisableTimestamp: true})
	case "json":
		e.log.SetFormatter(&logrus.JSONFormatter{})
	default:
		return e.fail(&usageError{fmt.Sprintf("--log-format %q: want text or json", *logFormat)})
	}
	lvl, err := logrus.ParseLevel(*logLevel)
	if err != nil {
		return e.fail(&usageError{err.Error()})
	}
	e.log.SetLevel(lvl)

	rest := global.Args()
	if len(rest) == 0 || rest[0] == "help" {
		printUsage(stdout, global)
		if len(rest) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name != rest[0] {
			continue
		}
		fs := flag.NewFlagSet(progName+" "+c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.BoolVar(&e.json, "json", false, "machine-readable JSON output")
		do := c.flags(fs)
		if err := fs.Parse(interleave(fs, rest[1:])); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprintf(stdout, "usage: %s %s [flags] %s\n\n%s.\n\nflags:\n", progName, c.name, c.args, c.summary)
				fs.SetOutput(stdout)
				fs.PrintDefaults()
				return exitOK
			}
			return e.fail(&usageError{fmt.Sprintf("%s: %v", c.name, err)})
		}
		return e.fail(do(e, fs.Args()))
	}
	return e.fail(&usageError{fmt.Sprintf("unknown command %q (see %s help)", rest[0], progName)})
}

// interleave lets flags follow positional arguments ("explain WL openat
// --args 0,0,1"): it moves every flag, with its value, to the front.
func interleave(fs *flag.FlagSet, args []string) []string {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBool(f) && i+1 < len(args) {
			flags = append(flags, args[i+1])
			i++
		}
	}
	return append(flags, pos...)
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// fail prints err once and returns its exit status: 0 for nil, 2 for usage
// errors, otherwise the exit status of its P1.7 code. With --json the error
// is a P1.7 payload on stderr.
func (e *env) fail(err error) int {
	if err == nil {
		return exitOK
	}
	var u *usageError
	if errors.As(err, &u) {
		fmt.Fprintf(e.stderr, "%s: %v\n", progName, err)
		return exitUsage
	}
	var q quiet
	switch {
	case errors.As(err, &q):
		// The command printed the details already.
	case e.json:
		b, _ := json.Marshal(clawerr.PayloadOf(progName, err))
		fmt.Fprintf(e.stderr, "%s\n", b)
	default:
		fmt.Fprintf(e.stderr, "%s: %v\n", progName, err)
	}
	return clawerr.CodeOf(err).ExitStatus()
}

func printUsage(w io.Writer, global *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s [flags] COMMAND [flags] ARGS\n\ncommands:\n", progName)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nflags:\n")
	global.SetOutput(w)
	global.PrintDefaults()
	global.SetOutput(io.Discard)
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags.\n", progName)
	fmt.Fprintf(w, "Exit status: 0 success, 2 usage error, 10+N failure with P1.7 code N (14 = EPERM, policy refused).\n")
}
