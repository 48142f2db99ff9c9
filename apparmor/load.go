package apparmor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	clawerr "github.com/clawos/clawos-security/errors"
)

// ErrNotSupported is wrapped by Enabled's error when the kernel has no
// AppArmor.
var ErrNotSupported = clawerr.New(clawerr.ENoEnt, "AppArmor is not enabled in this kernel")

// Enabled probes whether the kernel enforces AppArmor: its module parameter
// says Y and securityfs exposes the policy interface. sysModule and
// securityfs are parameters so tests can point them elsewhere
// (normally /sys/module/apparmor/parameters/enabled and
// /sys/kernel/security/apparmor).
func Enabled(sysModule, securityfs string) error {
	b, err := os.ReadFile(sysModule)
	if err != nil || strings.TrimSpace(string(b)) != "Y" {
		return fmt.Errorf("%s: %w", sysModule, ErrNotSupported)
	}
	if _, err := os.Stat(filepath.Join(securityfs, ".replace")); err != nil {
		return fmt.Errorf("%s: %w", securityfs, ErrNotSupported)
	}
	return nil
}

// parserTimeout bounds every apparmor_parser run.
const parserTimeout = 30 * time.Second

func runParser(parser string, args []string, text string) error {
	ctx, cancel := context.WithTimeout(context.Background(), parserTimeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "clawos-apparmor-")
	if err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "profile file")
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "profile")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		return clawerr.Wrap(clawerr.EIO, err, "profile file")
	}
	cmd := exec.CommandContext(ctx, parser, append(args, file)...)
	cmd.WaitDelay = time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return &clawerr.Error{Code: clawerr.EProto, Message: "apparmor_parser refused the profile",
			Err: fmt.Errorf("%w: %s", err, strings.TrimSpace(filterNoise(out.String())))}
	}
	return nil
}

// filterNoise drops the parser's warning about a kernel without AppArmor,
// which -Q makes irrelevant.
func filterNoise(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, "Cache read/write disabled") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// Compile checks text with the real parser without loading it (-Q skips
// the kernel, -K the cache): every profile must pass before it is used.
func Compile(parser, text string) error { return runParser(parser, []string{"-Q", "-K"}, text) }

// Load loads or replaces the profile in the kernel (-r), in complain mode
// when complain is true (-C). Replacing is idempotent.
func Load(parser, text string, complain bool) error {
	args := []string{"-r", "-K"}
	if complain {
		args = append(args, "-C")
	}
	return runParser(parser, args, text)
}
