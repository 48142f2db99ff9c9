package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	clawerr "github.com/clawos/clawos-security/errors"
)

// resolveInRoot is resolveCommand for a command inside a root filesystem
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

// resolveCommand finds the agent's executable on the host and returns its
// absolute path as given (what the sandbox execs) and every file execve
// will open for execution: the executable itself (symlinks resolved), a
// script's interpreter, and their ELF interpreters (the dynamic loader).
// Landlock's execute right is checked on each of them.
func resolveCommand(cmd string) (string, []string, error) {
	path, err := exec.LookPath(cmd)
	if err != nil {
		return "", nil, &clawerr.Error{Code: clawerr.ENoEnt, Message: fmt.Sprintf("command %q not found", cmd), Err: err}
	}
	path, err = filepath.Abs(path)
	if err != nil {
		return "", nil, clawerr.Wrap(clawerr.ENoEnt, err, "command "+cmd)
	}
	var files []string
	seen := map[string]bool{}
	var add func(p string, depth int) error
	add = func(p string, depth int) error {
		if depth > 4 {
			return clawerr.New(clawerr.EProto, "too many levels of interpreters for "+cmd)
		}
		real, err := filepath.EvalSymlinks(p)
		if err != nil {
			return clawerr.Wrap(clawerr.ENoEnt, err, "resolve "+p)
		}
		if seen[real] {
			return nil
		}
		seen[real] = true
		files = append(files, real)
		interp, err := interpreter(real)
		if err != nil {
			return err
		}
		if interp != "" {
			return add(interp, depth+1)
		}
		return nil
	}
	if err := add(path, 0); err != nil {
		return "", nil, err
	}
	return path, files, nil
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
