package namespaces

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	clawerr "github.com/clawos/clawos-security/errors"
)

// Workspace is the binds of a writable workspace at host directory dir
// (clawos-run --workspace): dir writable at the same path, then its git
// metadata read-only over it, as Codex does, so that an agent cannot
// rewrite history or install a hook that runs outside the sandbox: .git
// when it is a directory; when it is a file ("gitdir: PATH", a worktree or
// a submodule), that file and the directory it names, read-only at its own
// path, and that directory's common directory (its "commondir" file) too.
// Every bind of a workspace is idmapped where the view idmaps (IDMap).
// A workspace is refused at or under a path the sandbox manages (but
// /tmp/..., a directory in its private /tmp), and at /.
func Workspace(dir string) ([]Bind, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "--workspace "+dir)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, "--workspace")
	}
	if !fi.IsDir() {
		return nil, clawerr.New(clawerr.EProto, fmt.Sprintf("--workspace %s: not a directory", abs))
	}
	if !shareable(abs) {
		return nil, clawerr.New(clawerr.EPerm, fmt.Sprintf("--workspace %s: a workspace is never /, /tmp, or a path the sandbox manages itself (/proc, /sys, /dev, /run, /etc)", abs))
	}
	binds := []Bind{{Source: abs, Dest: abs}}
	git := filepath.Join(abs, ".git")
	gi, err := os.Lstat(git)
	switch {
	case err != nil:
		return binds, nil // not a repository (or not yet)
	case gi.IsDir():
		return append(binds, Bind{Source: git, Dest: git, ReadOnly: true, IDMap: true}), nil
	case !gi.Mode().IsRegular():
		return nil, clawerr.New(clawerr.EPerm, fmt.Sprintf("--workspace %s: .git is neither a directory nor a gitdir file (a symlink?): it could not be kept read-only", abs))
	}
	binds = append(binds, Bind{Source: git, Dest: git, ReadOnly: true, IDMap: true})
	target, err := gitdirOf(git)
	if err != nil {
		return nil, err
	}
	for _, d := range target {
		if !shareable(d) || under(abs, []string{d}) {
			return nil, clawerr.New(clawerr.EPerm, fmt.Sprintf("--workspace %s: its git directory %s is /, under a path the sandbox manages itself, or above the workspace", abs, d))
		}
		binds = append(binds, Bind{Source: d, Dest: d, ReadOnly: true, IDMap: true})
	}
	return binds, nil
}

// shareable says whether a host directory may be bound at its own path
// for a workspace: not /, /tmp, or a path the sandbox manages itself, but
// a directory in /tmp (a mount point in the sandbox's private /tmp).
func shareable(dir string) bool {
	return dir != "/" && dir != "/tmp" && (!Managed(dir) || under(dir, []string{"/tmp"}))
}

// gitdirOf reads a .git file ("gitdir: PATH", relative to the file's
// directory) and returns that directory and, when it has a commondir file
// (a worktree), the common directory.
func gitdirOf(gitFile string) ([]string, error) {
	f, err := os.Open(gitFile)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "read "+gitFile)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	p, ok := strings.CutPrefix(strings.TrimSpace(line), "gitdir:")
	if !ok {
		return nil, clawerr.New(clawerr.EProto, gitFile+": not a gitdir file")
	}
	p = strings.TrimSpace(p)
	if !filepath.IsAbs(p) {
		p = filepath.Join(filepath.Dir(gitFile), p)
	}
	dir, err := filepath.EvalSymlinks(p)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.ENoEnt, err, gitFile+": its gitdir")
	}
	out := []string{dir}
	if b, err := os.ReadFile(filepath.Join(dir, "commondir")); err == nil {
		c := strings.TrimSpace(string(b))
		if !filepath.IsAbs(c) {
			c = filepath.Join(dir, c)
		}
		if c, err = filepath.EvalSymlinks(c); err == nil && !under(dir, []string{c}) {
			out = append(out, c)
		} else if err == nil {
			// the gitdir is inside its common directory: bind the common
			// one (it covers the gitdir).
			out = []string{c}
		}
	}
	return out, nil
}
