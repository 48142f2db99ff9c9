package sandbox

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/namespaces"
)

// resolveInRoot is resolveInView for a command inside a root filesystem
// directory: cmd is an absolute path inside root, files are read through
// securejoin (symlinks cannot leave root), and the returned paths are paths
// inside the sandbox. clawos-init opens them there, so their symlinks
// resolve inside the sandbox too.
func resolveInRoot(root, cmd string) (string, []string, error) {
	if !filepath.IsAbs(cmd) {
		return "", nil, &clawerr.Error{Code: clawerr.EProto, Message: fmt.Sprintf("with a root filesystem the command must be an absolute path inside it, not %q", cmd)}
	}
	var files []string
	seen := map[string]bool{}
	p := cmd
	for depth := 0; p != ""; depth++ {
		if depth > 4 {
			return "", nil, clawerr.New(clawerr.EProto, "too many levels of interpreters for "+cmd)
		}
		if seen[p] {
			break
		}
		seen[p] = true
		files = append(files, p)
		host, err := securejoin.SecureJoin(root, p)
		if err != nil {
			return "", nil, clawerr.Wrap(clawerr.ENoEnt, err, "resolve "+p+" in "+root)
		}
		if _, err := os.Stat(host); err != nil {
			return "", nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("command %q not found in %s", p, root), Err: err}
		}
		if p, err = interpreter(host); err != nil {
			return "", nil, err
		}
	}
	return cmd, files, nil
}

// resolveInView finds the agent's command as the sandbox will see it in
// the default view v (its system directories and binds), as bubblewrap
// does: a bare name is searched in the sandbox's PATH through the view,
// never in the caller's (a host shim, ~/.pyenv/shims/python3, is not
// there); a path is taken as given, a relative one from the caller's
// directory. It returns the command's path inside the sandbox, every file
// execve opens for execution (the command, a script's interpreter and their
// ELF interpreters: Landlock's execute right is checked on each, and
// clawos-init opens them inside the sandbox), and the host files outside
// the view that must be mounted read-only at their own (real) path for the
// sandbox to see them: a command given by a host path, an interpreter
// outside the system directories. Files are read through the binds'
// sources, so a command bound elsewhere (--ro-bind agent.py:/app/agent.py)
// is found at its place in the sandbox.
func resolveInView(v namespaces.View, sandboxPATH, cmd string) (string, []string, []string, error) {
	path := cmd
	switch {
	case !strings.Contains(cmd, "/"):
		path = ""
		for _, dir := range filepath.SplitList(sandboxPATH) {
			if !filepath.IsAbs(dir) {
				continue // a relative PATH entry names nothing fixed in the sandbox
			}
			cand := filepath.Join(dir, cmd)
			if host, ok := v.HostPath(cand); ok && executable(host) {
				path = cand
				break
			}
		}
		if path == "" {
			return "", nil, nil, &clawerr.Error{Code: clawerr.ENoEnt,
				Message: fmt.Sprintf("command %q not found in the sandbox's PATH (%s)", cmd, sandboxPATH),
				Hint:    "give the command's path; a program outside the system directories is seen only through --ro-bind"}
		}
	case !filepath.IsAbs(cmd):
		abs, err := filepath.Abs(cmd)
		if err != nil {
			return "", nil, nil, clawerr.Wrap(clawerr.ENoEnt, err, "command "+cmd)
		}
		path = abs
	}
	var files, mounts []string
	seen := map[string]bool{}
	p := path
	for depth := 0; p != ""; depth++ {
		if depth > 4 {
			return "", nil, nil, clawerr.New(clawerr.EProto, "too many levels of interpreters for "+cmd)
		}
		host, inView := v.HostPath(p)
		real := p
		switch {
		case !inView:
			// A host file outside the view: mounted at its real path (a
			// mount point cannot be made under a symlink).
			r, err := filepath.EvalSymlinks(p)
			if err != nil {
				return "", nil, nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("command %q: %s not found", cmd, p), Err: err}
			}
			host, real = r, r
			mounts = append(mounts, r)
			if depth == 0 {
				path = r
			}
		case host == filepath.Join("/", p):
			// The host's own path (a system directory): its symlinks are the
			// sandbox's too, and AppArmor and Landlock see the real file.
			if r, err := filepath.EvalSymlinks(host); err == nil {
				real = r
			}
		}
		if _, err := os.Stat(host); err != nil {
			return "", nil, nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("command %q: %s not found in the sandbox's view", cmd, p), Err: err}
		}
		if seen[real] {
			break
		}
		seen[real] = true
		files = append(files, real)
		interp, err := interpreter(host)
		if err != nil {
			return "", nil, nil, err
		}
		p = interp
	}
	return path, files, mounts, nil
}

// executable reports whether path is a regular file someone may execute.
func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// interpreter returns a script's #! interpreter or an ELF file's PT_INTERP,
// "" for a static ELF file.
func interpreter(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", clawerr.Wrap(clawerr.ENoEnt, err, "open "+path)
	}
	defer f.Close()
	head := make([]byte, 256)
	n, _ := f.Read(head)
	head = head[:n]
	if bytes.HasPrefix(head, []byte("#!")) {
		line, _ := bufio.NewReader(bytes.NewReader(head[2:])).ReadString('\n')
		fields := strings.Fields(line)
		if len(fields) == 0 {
			return "", clawerr.New(clawerr.EProto, path+": empty #! line")
		}
		return fields[0], nil
	}
	ef, err := elf.NewFile(f)
	if err != nil {
		return "", clawerr.Wrap(clawerr.EProto, err, path+" is neither an ELF file nor a #! script")
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", clawerr.Wrap(clawerr.EProto, err, path+": PT_INTERP")
			}
			return string(bytes.TrimRight(b, "\x00")), nil
		}
	}
	return "", nil
}
