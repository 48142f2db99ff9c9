package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/apparmor"
	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// policyFlags are the flags shared by the commands that read a whitelist.
type policyFlags struct {
	arch, baseline, stage string
	// single: one filter for this runtime, loadable without clawos-init
	// (translate --format kubelet).
	single     string
	noNewPrivs bool
	requireSig bool
}

func addPolicyFlags(fs *flag.FlagSet, withBaseline bool) *policyFlags {
	p := &policyFlags{}
	fs.StringVar(&p.arch, "arch", string(translate.NativeArch()), "target architecture: x86_64 or aarch64")
	fs.BoolVar(&p.requireSig, "require-signature", false, "refuse an unsigned whitelist even outside production")
	if withBaseline {
		fs.StringVar(&p.baseline, "baseline", "none", "measured baselines to add: start, tokio, start,tokio or none")
		fs.StringVar(&p.stage, "container-stage", "", "show the container-level filter that clawos-run gives this OCI runtime (embedded or runc) instead of the agent's")
	}
	return p
}

// argsProfile takes the whitelist argument, reads and validates it, and
// translates it (see loadProfile).
func (p *policyFlags) argsProfile(e *env, args []string) (string, *translate.Whitelist, *translate.Profile, error) {
	path, opts, err := p.parse(args)
	if err != nil {
		return "", nil, nil, err
	}
	wl, prof, err := p.loadProfile(e, path, opts)
	return path, wl, prof, err
}

// loadProfile reads and validates the whitelist at path and translates it
// (or gives the container stage of --container-stage).
func (p *policyFlags) loadProfile(e *env, path string, opts translate.Options) (*translate.Whitelist, *translate.Profile, error) {
	wl, err := load(e, path, opts)
	if err != nil {
		return nil, nil, err
	}
	prof, err := p.profile(wl, opts)
	return wl, prof, err
}

// profile translates wl, or gives the container stage of --container-stage.
func (p *policyFlags) profile(wl *translate.Whitelist, opts translate.Options) (*translate.Profile, error) {
	if p.single != "" {
		return translate.SingleStage(wl, opts, p.single, p.noNewPrivs)
	}
	if p.stage == "" {
		return translate.Translate(wl, opts)
	}
	st, err := translate.TwoStage(wl, opts, p.stage)
	if err != nil {
		return nil, err
	}
	return st.Container, nil
}

// parse takes the single whitelist argument and the options.
func (p *policyFlags) parse(args []string) (string, translate.Options, error) {
	if len(args) != 1 {
		return "", translate.Options{}, &usageError{"want one argument, the whitelist (- reads standard input)"}
	}
	opts, err := p.options()
	return args[0], opts, err
}

func (p *policyFlags) options() (translate.Options, error) {
	arch, err := translate.ParseArch(p.arch)
	if err != nil {
		return translate.Options{}, &usageError{err.Error()}
	}
	bl, err := translate.ParseBaselines(p.baseline)
	if err != nil {
		return translate.Options{}, &usageError{err.Error()}
	}
	return translate.Options{Arch: arch, RequireSignature: p.requireSig, Baselines: bl}, nil
}

// check reads a whitelist and validates it.
func check(e *env, path string, opts translate.Options) ([]byte, *translate.Whitelist, translate.Report, error) {
	raw, err := translate.ReadFile(path, e.stdin)
	if err != nil {
		return nil, nil, translate.Report{}, err
	}
	v, err := schema.NewValidator()
	if err != nil {
		return nil, nil, translate.Report{}, err
	}
	wl, rep := v.Validate(raw, opts)
	return raw, wl, rep, nil
}

// load reads and validates a whitelist. Warnings are logged; errors refuse
// it with every diagnostic listed.
func load(e *env, path string, opts translate.Options) (*translate.Whitelist, error) {
	_, wl, rep, err := check(e, path, opts)
	if err != nil {
		return nil, err
	}
	for _, d := range rep.Warnings() {
		e.log.WithFields(map[string]any{"path": d.Path, "check": d.Check, "code": d.Code.String()}).Warn(d.Message)
	}
	if err := rep.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return wl, nil
}

func validateCmd(fs *flag.FlagSet) func(*env, []string) error {
	pf := addPolicyFlags(fs, false)
	return func(e *env, args []string) error {
		path, opts, err := pf.parse(args)
		if err != nil {
			return err
		}
		_, _, rep, err := check(e, path, opts)
		if err != nil {
			return err
		}
		if e.json {
			out := struct {
				Valid bool `json:"valid"`
				translate.Report
			}{rep.Err() == nil, rep}
			if err := writeJSON(e, out); err != nil {
				return err
			}
		} else {
			for _, d := range rep.Diagnostics {
				fmt.Fprintln(e.stdout, d)
			}
			fmt.Fprintf(e.stdout, "%s: %s for %s (%d errors, %d warnings)\n", path, verdictWord(rep), opts.Arch,
				len(rep.Errors()), len(rep.Warnings()))
		}
		if err := rep.Err(); err != nil {
			// Already printed in full; return only the classification.
			return quiet{err}
		}
		return nil
	}
}

func verdictWord(r translate.Report) string {
	if r.Err() != nil {
		return "INVALID"
	}
	return "valid"
}

// quiet carries an error's code without printing it again.
type quiet struct{ err error }

func (q quiet) Error() string { return "whitelist refused" }
func (q quiet) Unwrap() error { return q.err }

func signCmd(fs *flag.FlagSet) func(*env, []string) error {
	pf := addPolicyFlags(fs, false)
	out := fs.String("o", "", "write the signed whitelist to this file (atomically) instead of standard output")
	inPlace := fs.Bool("in-place", false, "replace the input file (atomically)")
	return func(e *env, args []string) error {
		path, opts, err := pf.parse(args)
		if err != nil {
			return err
		}
		raw, _, rep, err := check(e, path, opts)
		if err != nil {
			return err
		}
		// Everything but the signature itself must be valid before signing.
		var blocking []translate.Diagnostic
		for _, d := range rep.Errors() {
			if d.Check != "signature" {
				blocking = append(blocking, d)
			}
		}
		if len(blocking) > 0 {
			return fmt.Errorf("%s: refusing to sign: %w", path, &translate.InvalidError{Diagnostics: blocking})
		}
		signed, err := translate.Sign(raw)
		if err != nil {
			return err
		}
		dest := *out
		if *inPlace {
			if path == "-" {
				return &usageError{"--in-place needs a file, not standard input"}
			}
			dest = path
		}
		if dest == "" {
			_, err = e.stdout.Write(signed)
			return err
		}
		if err := atomicfile.WriteFile(dest, signed, 0o644); err != nil {
			return err
		}
		e.log.Infof("signed %s", dest)
		return nil
	}
}

func translateCmd(fs *flag.FlagSet) func(*env, []string) error {
	pf := addPolicyFlags(fs, true)
	spec := fs.Bool("spec", false, "print a whole OCI config (runc's default, or --config) with this seccomp section")
	config := fs.String("config", "", "with --spec: an existing config.json to start from (it is not modified)")
	format := fs.String("format", "oci", "oci (linux.seccomp, the agent stage) or kubelet (a Kubernetes Localhost seccomp profile, Docker's JSON shape, one stage; see docs/kubernetes.md)")
	runtime := fs.String("runtime", "runc", "with --format kubelet: the OCI runtime whose measured needs the profile includes")
	out := fs.String("o", "", "write to this file (atomically) instead of standard output")
	fs.BoolVar(&pf.noNewPrivs, "no-new-privs", false, "with --format kubelet: the pods set allowPrivilegeEscalation: false, so the runtime's calls made only while it drops privileges are left out")
	return func(e *env, args []string) error {
		switch *format {
		case "oci":
		case "kubelet":
			if *spec || pf.stage != "" {
				return &usageError{"--format kubelet is one stage of its own: not with --spec or --container-stage"}
			}
			pf.single = *runtime
			if !flagSet(fs, "baseline") {
				pf.baseline = "start" // nothing else adds what the program needs from execve to main
			}
		default:
			return &usageError{fmt.Sprintf("--format %q: want oci or kubelet", *format)}
		}
		_, wl, p, err := pf.argsProfile(e, args)
		if err != nil {
			return err
		}
		if pf.single != "" {
			for _, loss := range kubeletLosses(p) {
				e.log.Warn(loss)
			}
			b, err := p.SeccompJSON()
			if err != nil {
				return err
			}
			return emit(e, *out, b)
		}
		var b []byte
		if *spec {
			s, err := baseSpec(*config)
			if err != nil {
				return err
			}
			if err := translate.ApplyToSpec(s, wl, p); err != nil {
				return err
			}
			b, err = translate.MarshalSpec(s)
			if err != nil {
				return err
			}
		} else if b, err = p.SeccompJSON(); err != nil {
			return err
		}
		if p.Network.Restricted() {
			e.log.Infof("port restrictions (connect %v, bind %v) are carried in the %s annotation, not in seccomp",
				p.Network.ConnectPorts, p.Network.BindPorts, translate.AnnotationNetworkPolicy)
		}
		return emit(e, *out, b)
	}
}

// emit writes b to the file dest atomically, or to standard output.
func emit(e *env, dest string, b []byte) error {
	if dest != "" {
		return atomicfile.WriteFile(dest, b, 0o644)
	}
	_, err := e.stdout.Write(b)
	return err
}

// flagSet tells whether the command line set flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// kubeletLosses says what a single-stage profile (translate --format
// kubelet) does not enforce that clawos-run and the clawos runtime handler
// do.
func kubeletLosses(p *translate.Profile) []string {
	out := []string{"kubelet profile: one stage, no clawos-init: the container runs under the whitelist plus what the OCI runtime's init calls after loading the filter, unconditionally allowed: " + strings.Join(p.Widened, ", ")}
	if p.Network.Restricted() {
		out = append(out, fmt.Sprintf("kubelet profile: the port restrictions (connect %v, bind %v) are NOT enforced: seccomp cannot read a port, and no network rules are installed on this path", p.Network.ConnectPorts, p.Network.BindPorts))
	}
	return append(out, "kubelet profile: no signature check or P1.7 codes when the node loads it, no audit record, no Landlock exec restriction, no namespace hardening: use the clawos RuntimeClass where the node allows it")
}

func baseSpec(path string) (*specs.Spec, error) {
	if path == "" {
		return defaultSpec(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, "read OCI config")
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, clawerr.Wrap(clawerr.EProto, err, "parse OCI config "+path)
	}
	return &s, nil
}

func explainCmd(fs *flag.FlagSet) func(*env, []string) error {
	pf := addPolicyFlags(fs, true)
	argList := fs.String("args", "", "with SYSCALL: comma-separated argument values (decimal or 0x hex), evaluated through the compiled BPF")
	return func(e *env, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return &usageError{"want WHITELIST [SYSCALL]"}
		}
		opts, err := pf.options()
		if err != nil {
			return err
		}
		_, p, err := pf.loadProfile(e, args[0], opts)
		if err != nil {
			return err
		}
		if len(args) == 2 {
			return explainCall(e, p, args[1], *argList)
		}
		if e.json {
			return writeJSON(e, p)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SYSCALL\tNR\tVERDICT\tSOURCE\tREASON")
		for _, o := range p.Origins {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", o.Syscall, o.Number, o.Verdict, o.Source, o.Reason)
		}
		for _, o := range p.Skipped {
			fmt.Fprintf(tw, "%s\t-\tno rule\t%s\t%s\n", o.Syscall, o.Source, o.Reason)
		}
		fmt.Fprintf(tw, "(any other)\t\tkill process (SIGSYS)\tdefault action\tP1.2: anything not listed is killed\n")
		fmt.Fprintf(tw, "(other arch)\t\tkill process (SIGSYS)\tarchitectures\tonly %s calls are accepted (no i386 int 0x80, no x32)\n", p.Arch)
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "\nexec (clawos-run): %s\n", p.ExecMode())
		if p.Network.Restricted() {
			fmt.Fprintf(e.stdout, "\nnetwork policy (enforced in the agent's network namespace, not by seccomp): connect ports %v, bind ports %v\n",
				p.Network.ConnectPorts, p.Network.BindPorts)
		}
		return nil
	}
}

// explainCall evaluates one call through the compiled BPF program.
func explainCall(e *env, p *translate.Profile, name, argList string) error {
	nr, ok := p.Arch.SyscallNumber(name)
	if !ok {
		return &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("%q is not a syscall on %s", name, p.Arch)}
	}
	in := seccomp.Input{Arch: p.Arch.Audit(), Nr: int32(nr)}
	if argList != "" {
		parts := strings.Split(argList, ",")
		if len(parts) > 6 {
			return &usageError{"--args takes at most 6 values"}
		}
		for i, s := range parts {
			v, err := parseArg(strings.TrimSpace(s))
			if err != nil {
				return &usageError{fmt.Sprintf("--args value %d: %v", i, err)}
			}
			in.Args[i] = v
		}
	}
	prog, err := seccomp.Compile(p.Seccomp)
	if err != nil {
		return err
	}
	ev, err := seccomp.NewEvaluator(prog)
	if err != nil {
		return err
	}
	verdict := ev.Evaluate(in)
	rule := translate.Origin{Syscall: name, Number: nr, Verdict: "kill process (not listed)", Source: "default action"}
	for _, o := range p.Origins {
		if o.Syscall == name {
			rule = o
		}
	}
	if e.json {
		return writeJSON(e, struct {
			Syscall string           `json:"syscall"`
			Number  int              `json:"number"`
			Args    [6]uint64        `json:"args"`
			Verdict string           `json:"verdict"`
			Rule    translate.Origin `json:"rule"`
		}{name, nr, in.Args, verdict.String(), rule})
	}
	fmt.Fprintf(e.stdout, "%s(%s) on %s: %s\nrule: %s (from %s)\n", name, formatArgs(in.Args, argList != ""), p.Arch, verdict, rule.Verdict, rule.Source)
	return nil
}

func parseArg(s string) (uint64, error) {
	if strings.HasPrefix(s, "-") {
		v, err := strconv.ParseInt(s, 0, 64)
		return uint64(v), err
	}
	return strconv.ParseUint(s, 0, 64)
}

func formatArgs(a [6]uint64, given bool) string {
	if !given {
		return ""
	}
	s := make([]string, len(a))
	for i, v := range a {
		s[i] = fmt.Sprintf("%#x", v)
	}
	return strings.Join(s, ", ")
}

func compileCmd(fs *flag.FlagSet) func(*env, []string) error {
	pf := addPolicyFlags(fs, true)
	out := fs.String("o", "", "write the raw BPF program (struct sock_filter array) to this file, atomically")
	listing := fs.Bool("listing", false, "print the readable listing")
	plan := fs.Bool("plan", false, "validate the whitelist for the plan cache and store it there (pre-warm) for clawos-run and clawos-hook installed beside this program, printing the entry, or the errors, as JSON; nothing is compiled")
	cache := fs.String("cache", "", "with --plan: the plan cache directory (default: the caller's, /var/cache/clawos/plans for root); \"off\" stores nothing")
	reaper := fs.Bool("init-reaper", false, "with --plan: validate as clawos-run --init does")
	return func(e *env, args []string) error {
		if *plan {
			return planEntry(e, pf, args, *cache, *reaper)
		}
		path, _, p, err := pf.argsProfile(e, args)
		if err != nil {
			return err
		}
		prog, err := seccomp.Compile(p.Seccomp)
		if err != nil {
			return err
		}
		if *out != "" {
			if err := atomicfile.WriteFile(*out, prog.Bytes(), 0o644); err != nil {
				return err
			}
		}
		if e.json {
			return writeJSON(e, struct {
				Arch         translate.Arch `json:"arch"`
				Instructions int            `json:"instructions"`
				Limit        int            `json:"limit"`
				Listing      []string       `json:"listing,omitempty"`
			}{p.Arch, prog.Len(), seccomp.MaxInstructions, listingLines(prog, *listing)})
		}
		fmt.Fprintf(e.stdout, "%s: %d BPF instructions for %s (kernel limit %d)\n", path, prog.Len(), p.Arch, seccomp.MaxInstructions)
		if *listing {
			fmt.Fprint(e.stdout, prog.Listing())
		}
		return nil
	}
}

// planEntry validates a whitelist for the plan cache: it prints the
// entry (or the errors) as JSON, and stores a valid one in the cache
// keyed for each of clawos-run and clawos-hook installed beside this
// program.
func planEntry(e *env, pf *policyFlags, args []string, cache string, reaper bool) error {
	path, opts, err := pf.parse(args)
	if err != nil {
		return err
	}
	opts.InitReaper = reaper
	raw, _, rep, err := check(e, path, opts)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "locate clawos-policy")
	}
	// An entry per program beside this one that looks entries up
	// (clawos-run, clawos-hook); the first is printed. With none, the
	// entry is printed and stored nowhere.
	builds := plancache.Identities(filepath.Dir(self))
	first := ""
	if len(builds) > 0 {
		first = builds[0]
	}
	res := plancache.Validated(plancache.Key(raw, opts, first), raw, rep)
	if res.Entry != nil && cache != "off" && len(builds) > 0 {
		if cache == "" {
			cache = plancache.DefaultDir(os.Geteuid())
		}
		c, err := plancache.Open(cache, os.Geteuid())
		if err != nil {
			return clawerr.Wrap(clawerr.EPerm, err, "plan cache")
		}
		for _, b := range builds {
			entry := *res.Entry
			entry.Key = plancache.Key(raw, opts, b)
			if err := c.Put(&entry); err != nil {
				return err
			}
		}
	}
	return writeJSON(e, res)
}

func listingLines(p *seccomp.Program, want bool) []string {
	if !want {
		return nil
	}
	return strings.Split(strings.TrimSuffix(p.Listing(), "\n"), "\n")
}

func writeJSON(e *env, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return clawerr.Wrap(clawerr.EInternal, err, "encode JSON output")
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

// defaultSpec is runc's own default config (`runc spec`).
func defaultSpec() *specs.Spec { return specconv.Example() }

func apparmorCmd(fs *flag.FlagSet) func(*env, []string) error {
	pf := addPolicyFlags(fs, false)
	preset := fs.String("preset", "", "P1.6 preset: "+strings.Join(apparmor.KnownPresets(), ", "))
	name := fs.String("name", "", "profile name (default: the preset's, or clawos-agent)")
	check := fs.Bool("check", false, "compile the profile with apparmor_parser (without loading it)")
	return func(e *env, args []string) error {
		_, _, p, err := pf.argsProfile(e, args)
		if err != nil {
			return err
		}
		prof, err := apparmor.Generate(apparmor.Input{Name: *name, Preset: *preset, Agent: p})
		if err != nil {
			return err
		}
		text, err := prof.Render()
		if err != nil {
			return err
		}
		if *check {
			parser, err := exec.LookPath("apparmor_parser")
			if err != nil {
				return &clawerr.Error{Code: clawerr.ENoEnt, Message: "apparmor_parser not found", Err: err, Hint: "apt-get install apparmor"}
			}
			if err := apparmor.Compile(parser, text); err != nil {
				return err
			}
			e.log.Info("apparmor_parser compiled the profile")
		}
		_, err = fmt.Fprint(e.stdout, text)
		return err
	}
}

func diffCmd(fs *flag.FlagSet) func(*env, []string) error {
	pf := addPolicyFlags(fs, false)
	return func(e *env, args []string) error {
		if len(args) != 2 {
			return &usageError{"want OLD NEW, two whitelists"}
		}
		opts, err := pf.options()
		if err != nil {
			return err
		}
		var wls [2]*translate.Whitelist
		for i, path := range args {
			if wls[i], err = load(e, path, opts); err != nil {
				return err
			}
		}
		changes := translate.Diff(wls[0], wls[1])
		if e.json {
			if changes == nil {
				changes = []translate.Change{}
			}
			b, err := json.MarshalIndent(changes, "", "  ")
			if err != nil {
				return clawerr.Wrap(clawerr.EInternal, err, "encode the diff")
			}
			_, err = fmt.Fprintf(e.stdout, "%s\n", b)
			return err
		}
		if len(changes) == 0 {
			_, err := fmt.Fprintln(e.stdout, "no difference in what the two whitelists allow")
			return err
		}
		wider := 0
		for _, c := range changes {
			mark := " "
			if c.Wider {
				mark, wider = "!", wider+1
			}
			switch c.Kind {
			case "added":
				fmt.Fprintf(e.stdout, "%s + %-20s %s\n", mark, c.Syscall, c.To)
			case "removed":
				fmt.Fprintf(e.stdout, "%s - %-20s %s\n", mark, c.Syscall, c.From)
			default:
				fmt.Fprintf(e.stdout, "%s ~ %-20s %s -> %s\n", mark, c.Syscall, c.From, c.To)
			}
		}
		_, err = fmt.Fprintf(e.stdout, "%d changes, %d of them allow more (marked !)\n", len(changes), wider)
		return err
	}
}
