package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/internal/cli"
	"github.com/clawos/clawos-security/internal/version"
	"github.com/clawos/clawos-security/translate"
)

const usage = `usage: clawos-hook [flags] precreate|prestart|createRuntime|poststop

precreate reads an OCI config on stdin and prints it, confined when it has
the io.clawos.whitelist annotation; the other stages read the OCI state.
`

// safePath is the only environment a hook keeps: it never depends on its
// caller's (LD_PRELOAD and friends are ignored; the binary is static).
const safePath = "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	os.Clearenv()
	os.Setenv("PATH", safePath[len("PATH="):])
	log := logrus.New()
	log.SetOutput(stderr)
	log.SetFormatter(&logrus.JSONFormatter{})
	log.SetLevel(logrus.WarnLevel)

	var cfg hook.Config
	fs := flag.NewFlagSet("clawos-hook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&cfg.WhitelistDir, "whitelist-dir", "", "trusted directory of whitelists (default "+hook.DefaultWhitelistDir+")")
	fs.StringVar(&cfg.StateDir, "state-dir", "", "state directory (default "+hook.DefaultStateDir+")")
	fs.StringVar(&cfg.AuditLog, "audit-log", "", "audit log, one JSON line per stage (default "+hook.DefaultAuditLog+")")
	fs.StringVar(&cfg.AppArmor, "apparmor", "", "AppArmor: auto, required or off (default auto)")
	fs.BoolVar(&cfg.RequireSignature, "require-signature", false, "refuse unsigned whitelists")
	fs.StringVar(&cfg.Init, "init", "", "clawos-init on the host (default: next to clawos-hook)")
	fs.StringVar(&cfg.Poststop, "poststop", "", "clawos-poststop on the host, the poststop stage's quick path injected in front of clawos-hook (default: next to clawos-hook; off: clawos-hook itself)")
	fs.StringVar(&cfg.Policy, "policy", "", "clawos-policy on the host, which validates a whitelist the plan cache does not hold (default: next to clawos-hook)")
	fs.StringVar(&cfg.PlanCache, "plan-cache", "", "the plan cache: whitelists clawos-policy validated, by content (default /var/cache/clawos/plans for root; off: validate every time)")
	fs.StringVar(&cfg.Runtime, "runtime-name", "", "runtime whose measured needs the container filter includes (default runc)")
	fs.StringVar(&cfg.Timeout, "timeout", "", "bound on the stage's run time (default 10s)")
	configPath := fs.String("config", hook.DefaultConfigFile, "the runtime configuration (runtime.json) every entry point reads, the runtime wrapper included; a missing file is an empty one. Flags given here override it")
	showVersion := fs.Bool("version", false, "print the version and exit")
	generate := fs.String("generate", "", "print the manual page (man) or bash completion (bash), generated from the flags, and exit")
	deferRefusal := fs.Bool("defer-refusal", false, "precreate: report a refusal through the container's prestart hook (exit 0 with a config that cannot start), for engines that discard a precreate hook's stderr (podman 4.3)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, version.String("clawos-hook"))
		return 0
	}
	if *generate != "" {
		c := cli.Command{Name: "clawos-hook", Summary: "the ClawOS OCI hook and runtime wrapper back end",
			Synopsis: "[flags] precreate|prestart|createRuntime|poststop", Description: strings.TrimSpace(usage), Flags: fs}
		if err := cli.Generate(stdout, c, *generate, version.Module()); err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		return 0
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	stage := fs.Arg(0)
	var err error
	// One policy for every entry point: runtime.json first, then what the
	// command line sets explicitly.
	var base hook.Config
	if *configPath != "" {
		if base, err = hook.ReadConfig(*configPath, true); err != nil {
			return fail(stderr, err)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "whitelist-dir":
			base.WhitelistDir = cfg.WhitelistDir
		case "state-dir":
			base.StateDir = cfg.StateDir
		case "audit-log":
			base.AuditLog = cfg.AuditLog
		case "apparmor":
			base.AppArmor = cfg.AppArmor
		case "require-signature":
			base.RequireSignature = cfg.RequireSignature
		case "init":
			base.Init = cfg.Init
		case "policy":
			base.Policy = cfg.Policy
		case "poststop":
			base.Poststop = cfg.Poststop
		case "plan-cache":
			base.PlanCache = cfg.PlanCache
		case "runtime-name":
			base.Runtime = cfg.Runtime
		case "timeout":
			base.Timeout = cfg.Timeout
		}
	})
	// The hooks never honour the CRI sandbox marker (see Config.CRI).
	base.CRI = false
	cfg = base
	self, err := os.Executable()
	if err != nil {
		return fail(stderr, clawerr.Wrap(clawerr.EInternal, err, "locate clawos-hook"))
	}
	cfg = cfg.WithDefaults(self)
	if err := cfg.Check(); err != nil {
		return fail(stderr, err)
	}
	// Bounded run time: a stage that hangs refuses the container.
	timer := time.AfterFunc(cfg.TimeoutDuration(), func() {
		err := clawerr.New(clawerr.ETimeout, fmt.Sprintf("clawos-hook %s did not finish in %s", stage, cfg.TimeoutDuration()))
		hook.Append(cfg.AuditLog, hook.NewRecord(stage, "", nil, err))
		os.Exit(fail(stderr, err))
	})
	defer timer.Stop()

	switch stage {
	case "precreate":
		return precreate(cfg, *deferRefusal, stdin, stdout, stderr, log)
	case "prestart", "createRuntime", "poststop":
		st, err := hook.ReadState(stdin)
		if err != nil {
			hook.Append(cfg.AuditLog, hook.NewRecord(stage, "", nil, err))
			return fail(stderr, err)
		}
		var out *hook.Outcome
		if stage == "poststop" {
			out, err = hook.Poststop(st, cfg)
		} else {
			out, err = hook.Prestart(st, cfg, log)
		}
		if aerr := hook.Append(cfg.AuditLog, hook.NewRecord(stage, st.ID, out, err)); aerr != nil && err == nil {
			err = aerr // an unaudited start is refused
		}
		if err != nil {
			return fail(stderr, err)
		}
		return 0
	default:
		fs.Usage()
		return 2
	}
}

// precreate filters the config: verbatim without the annotation.
func precreate(cfg hook.Config, deferRefusal bool, stdin io.Reader, stdout, stderr io.Writer, log *logrus.Logger) int {
	raw, err := io.ReadAll(io.LimitReader(stdin, 16<<20))
	if err != nil {
		return fail(stderr, clawerr.Wrap(clawerr.EIO, err, "read the config"))
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		err = &clawerr.Error{Code: clawerr.EProto, Message: "standard input is not an OCI config", Err: err}
		hook.Append(cfg.AuditLog, hook.NewRecord("precreate", "", nil, err))
		return fail(stderr, err)
	}
	requestedNNP := spec.Process != nil && spec.Process.NoNewPrivileges
	out, err := hook.Apply(&spec, cfg, log)
	if out != nil && err == nil {
		// The hooks alone cannot confine an exec (no hook runs for one).
		err = hook.GuardExec(requestedNNP, &spec)
	}
	if out == nil && err == nil {
		_, err = io.Copy(stdout, bytes.NewReader(raw))
		if err != nil {
			return fail(stderr, clawerr.Wrap(clawerr.EIO, err, "write the config"))
		}
		return 0
	}
	if aerr := hook.Append(cfg.AuditLog, hook.NewRecord("precreate", "", out, err)); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		if !deferRefusal {
			return fail(stderr, err)
		}
		fail(stderr, err)
		hook.Refuse(&spec, cfg, err)
	}
	b, err := translate.MarshalSpec(&spec)
	if err != nil {
		return fail(stderr, err)
	}
	if _, err := stdout.Write(b); err != nil {
		return fail(stderr, clawerr.Wrap(clawerr.EIO, err, "write the config"))
	}
	return 0
}

// fail writes err as a P1.7 payload on stderr; the exit status is 1, which
// every engine reads as "do not start the container".
func fail(stderr io.Writer, err error) int {
	b, _ := json.Marshal(clawerr.PayloadOf("clawos-hook", err))
	fmt.Fprintf(stderr, "%s\n", b)
	return 1
}
