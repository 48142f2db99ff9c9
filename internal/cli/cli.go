// Package cli generates a program's manual page and its shell completion
// from the same flag definitions its --help prints, so that neither can
// name a flag the program does not have.
package cli

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Command is a program, or one of its subcommands, as its flag set
// defines it.
type Command struct {
	Name    string // clawos-run; a subcommand's own name
	Summary string // one line
	// Synopsis follows the name in the SYNOPSIS section ("[flags] -- CMD").
	Synopsis string
	// Description is a paragraph or more, plain text.
	Description string
	Flags       *flag.FlagSet
	Sub         []Command
}

// Generate writes c's manual page (kind "man") or bash completion ("bash").
func Generate(w io.Writer, c Command, kind, version string) error {
	switch kind {
	case "man":
		return Man(w, c, version)
	case "bash":
		return Bash(w, c)
	}
	return fmt.Errorf("generate %q: want man or bash", kind)
}

// roff escapes text for a manual page: backslashes, and a dot or quote
// that would start a request at the beginning of a line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// flags lists a flag set's flags sorted by name.
func flags(fs *flag.FlagSet) []*flag.Flag {
	var out []*flag.Flag
	if fs != nil {
		fs.VisitAll(func(f *flag.Flag) { out = append(out, f) })
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func options(w io.Writer, fs *flag.FlagSet) {
	for _, f := range flags(fs) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, ".TP\n.B \\-\\-%s", roff(f.Name))
		if name != "" {
			fmt.Fprintf(w, " \\fI%s\\fR", roff(name))
		}
		fmt.Fprintf(w, "\n%s", roff(usage))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
			fmt.Fprintf(w, " (default %s)", roff(f.DefValue))
		}
		fmt.Fprintln(w)
	}
}

// Man writes c's manual page, section 1.
func Man(w io.Writer, c Command, version string) error {
	fmt.Fprintf(w, ".TH %s 1 \"\" \"clawos-security %s\" \"User Commands\"\n", roff(strings.ToUpper(c.Name)), roff(version))
	fmt.Fprintf(w, ".SH NAME\n%s \\- %s\n", roff(c.Name), roff(c.Summary))
	fmt.Fprintf(w, ".SH SYNOPSIS\n.B %s\n%s\n", roff(c.Name), roff(c.Synopsis))
	if c.Description != "" {
		fmt.Fprintf(w, ".SH DESCRIPTION\n%s\n", roff(c.Description))
	}
	if len(flags(c.Flags)) > 0 {
		fmt.Fprintln(w, ".SH OPTIONS")
		options(w, c.Flags)
	}
	if len(c.Sub) > 0 {
		fmt.Fprintln(w, ".SH COMMANDS")
		for _, s := range c.Sub {
			fmt.Fprintf(w, ".SS %s\n%s\n", roff(s.Name+" "+s.Synopsis), roff(s.Summary))
			options(w, s.Flags)
		}
	}
	_, err := fmt.Fprintln(w, ".SH SEE ALSO\nThe documentation in docs/ of clawos\\-security.")
	return err
}

func words(fs *flag.FlagSet) string {
	var out []string
	for _, f := range flags(fs) {
		out = append(out, "--"+f.Name)
	}
	return strings.Join(out, " ")
}

// Bash writes a bash completion for c: its flags (and, with subcommands,
// the subcommand names, then the named subcommand's flags); files
// otherwise.
func Bash(w io.Writer, c Command) error {
	fn := "_" + strings.NewReplacer("-", "_", ".", "_").Replace(c.Name)
	fmt.Fprintf(w, "# bash completion for %s, generated from its flags (%s --generate bash)\n", c.Name, c.Name)
	fmt.Fprintf(w, "%s() {\n\tlocal cur=${COMP_WORDS[COMP_CWORD]} sub= w\n", fn)
	if len(c.Sub) > 0 {
		var names []string
		for _, s := range c.Sub {
			names = append(names, s.Name)
		}
		fmt.Fprintf(w, "\tfor w in \"${COMP_WORDS[@]:1:COMP_CWORD-1}\"; do\n\t\tcase $w in\n")
		for _, s := range c.Sub {
			fmt.Fprintf(w, "\t\t%s) sub=%s ;;\n", s.Name, s.Name)
		}
		fmt.Fprintf(w, "\t\tesac\n\tdone\n")
		fmt.Fprintf(w, "\tcase $sub in\n")
		for _, s := range c.Sub {
			fmt.Fprintf(w, "\t%s) [[ $cur == -* ]] && COMPREPLY=($(compgen -W %q -- \"$cur\")) && return ;;\n", s.Name, words(s.Flags))
		}
		fmt.Fprintf(w, "\t'') if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); else COMPREPLY=($(compgen -W %q -- \"$cur\")); fi; return ;;\n",
			words(c.Flags), strings.Join(names, " "))
		fmt.Fprintf(w, "\tesac\n")
	} else {
		fmt.Fprintf(w, "\tif [[ $cur == -* ]]; then COMPREPLY=($(compgen -W %q -- \"$cur\")); return; fi\n", words(c.Flags))
	}
	fmt.Fprintf(w, "\tCOMPREPLY=($(compgen -f -- \"$cur\"))\n}\ncomplete -o filenames -F %s %s\n", fn, c.Name)
	return nil
}
