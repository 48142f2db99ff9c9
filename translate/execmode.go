package translate

import "strings"

// Exec modes: what an agent may execute after its start, as clawos-run and
// the clawos runtime enforce it.
const (
	// ExecModeStartOnly: the whitelist does not allow execve or execveat;
	// no program but the agent starts.
	ExecModeStartOnly = "start-only: no program but the agent starts (seccomp kills every other execve, a guess of clawos-init's secret address included)"
	// ExecModeReadOnlyView: the whitelist allows execve or execveat; the
	// agent may execute programs of the sandbox's read-only view, never a
	// file of a writable place.
	ExecModeReadOnlyView = "allowed: programs of the read-only view (system directories, --ro-bind mounts, the agent's own files); never a file from a writable place (/tmp, /dev, --bind, --tmpfs, the workspace: noexec mounts, and Landlock's execute right where the kernel has it)"
)

// ExecAllowed reports whether the profile lets the agent execute programs
// after its start: it allows execve or execveat, beyond the start-only
// execve of clawos-init (Options.ExecStart).
func (p *Profile) ExecAllowed() bool {
	for _, o := range p.Origins {
		if o.Syscall != "execve" && o.Syscall != "execveat" {
			continue
		}
		if strings.HasPrefix(o.Verdict, "allow") && !(o.Syscall == "execve" && p.ExecStartOnly) {
			return true
		}
	}
	return false
}

// ExecMode says in words what the agent may execute after its start:
// ExecModeReadOnlyView or ExecModeStartOnly.
func (p *Profile) ExecMode() string {
	if p.ExecAllowed() {
		return ExecModeReadOnlyView
	}
	return ExecModeStartOnly
}
