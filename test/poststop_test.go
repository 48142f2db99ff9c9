package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/clawos/clawos-security/hook"
)

// TestPoststopQuick runs clawos-poststop (and its build under ASan and
// UBSan) as runc runs the poststop hook the hook package injects, after
// clawos-hook's real precreate and prestart: where prestart left its file
// and the kernel's audit thread has not run since, it removes the state
// record and writes the audit line clawos-hook writes (the same bytes but
// the time), without running clawos-hook; anything else goes to
// clawos-hook with the state on its standard input, untouched.
func TestPoststopQuick(t *testing.T) {
	if os.Getenv(integrationEnv) == "" {
		t.Skipf("needs root and %s=1", integrationEnv)
	}
	if os.Geteuid() != 0 {
		t.Fatal("the hook tests run as root (CI does)")
	}
	h := newHookStages(t)
	injected := h.poststop()
	installed, _ := filepath.Abs("../bin/clawos-poststop")
	if injected.Path != installed {
		t.Fatalf("precreate's poststop hook: %+v, want %s in front of clawos-hook", injected, installed)
	}
	args := injected.Args
	if len(args) < 8 || args[5] != "--" || args[6] != h.hookBin {
		t.Fatalf("clawos-poststop's arguments: %q", args)
	}
	record := filepath.Join(h.cfg.StateDir, "bench.json")
	quick := filepath.Join(h.cfg.StateDir, "bench.poststop")
	// fallback stands in for clawos-hook: it keeps its standard input and
	// exits 7, so that a test sees that clawos-poststop handed over.
	fallback := filepath.Join(t.TempDir(), "fallback")
	if err := os.WriteFile(fallback, []byte("#!/bin/sh\ncat > \"$0.stdin\"\nexit 7\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// prestart leaves the record and clawos-poststop's file; the mark needs
	// the audit thread asleep (other tests' kills wake it): bounded retries.
	prestart := func(t *testing.T) {
		for i := 0; ; i++ {
			h.call("prestart", h.state)
			if _, err := os.Stat(quick); err == nil {
				return
			}
			if i == 200 {
				t.Fatal("prestart left no file for clawos-poststop in 200 tries: the audit thread never seen asleep")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	run := func(t *testing.T, prog, hookPath string, state []byte) (int, string) {
		a := append([]string{}, args[1:]...)
		a[5] = hookPath
		cmd := exec.Command(prog, a...)
		cmd.Stdin = bytes.NewReader(state)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), stderr.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, stderr.String()
	}
	lastLine := func(t *testing.T) string {
		b := mustRead(t, h.cfg.AuditLog)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		return lines[len(lines)-1]
	}
	// withoutTime is an audit line without its time, which it checks is
	// Go's RFC 3339 with nanoseconds, within [from, to].
	withoutTime := func(t *testing.T, line string, from, to time.Time) string {
		var r hook.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		stamp, _ := json.Marshal(r.Time)
		head := `{"time":` + string(stamp)
		if !strings.HasPrefix(line, head) || r.Time.Before(from.Truncate(time.Microsecond)) || r.Time.After(to) || r.Time.Location() != time.UTC {
			t.Fatalf("audit line %q: its time is not Go's encoding of a time in [%v, %v]", line, from, to)
		}
		return line[len(head):]
	}
	gone := func(t *testing.T) {
		for _, p := range []string{record, quick} {
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				t.Errorf("%s left: %v", p, err)
			}
		}
	}
	for _, prog := range []string{"clawos-poststop", "clawos-poststop-san"} {
		t.Run(prog, func(t *testing.T) {
			bin, _ := filepath.Abs("../bin/" + prog)
			var quickLine string
			t.Run("quick", func(t *testing.T) {
				for i := 0; ; i++ {
					prestart(t)
					from := time.Now()
					code, stderr := run(t, bin, fallback, h.state)
					if code == 0 {
						quickLine = withoutTime(t, lastLine(t), from, time.Now())
						break
					}
					if code != 7 || i == 50 {
						t.Fatalf("exit %d (50 tries): %s", code, stderr)
					}
				}
				gone(t)
				var r hook.Record
				json.Unmarshal([]byte(lastLine(t)), &r)
				if r.Stage != "poststop" || r.Decision != hook.DecisionCleaned || r.ContainerID != "bench" || r.Whitelist != "probe" ||
					r.WhitelistID == "" || r.Digest == "" || r.KilledBy != "" {
					t.Errorf("audit record %+v", r)
				}
			})
			t.Run("the same line as clawos-hook", func(t *testing.T) {
				prestart(t)
				os.Remove(quick)
				from := time.Now()
				if code, stderr := run(t, bin, h.hookBin, h.state); code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				gone(t)
				if got := withoutTime(t, lastLine(t), from, time.Now()); got != quickLine {
					t.Errorf("clawos-hook wrote\n%s\nclawos-poststop\n%s", got, quickLine)
				}
			})
			reordered, _ := json.Marshal(map[string]any{"id": "bench", "ociVersion": specs.Version, "status": "stopped", "pid": 0})
			for _, c := range []struct {
				name   string
				change func(t *testing.T)
				state  []byte
			}{
				{"the audit thread ran since", func(t *testing.T) {
					b := mustRead(t, quick)
					lines := strings.SplitN(string(b), "\n", 4)
					var pid, sleeps int
					if n, err := fmt.Sscanf(lines[2], "mark %d %d", &pid, &sleeps); n != 2 || err != nil {
						t.Fatalf("mark line %q", lines[2])
					}
					lines[2] = fmt.Sprintf("mark %d %d", pid, sleeps+1)
					writeFile(t, quick, strings.Join(lines, "\n"))
				}, h.state},
				{"a file others can read", func(t *testing.T) { os.Chmod(quick, 0o640) }, h.state},
				{"another container's file", func(t *testing.T) {
					writeFile(t, quick, strings.Replace(string(mustRead(t, quick)), "\nid bench\n", "\nid other\n", 1))
				}, h.state},
				{"no file", func(t *testing.T) { os.Remove(quick) }, h.state},
				{"a state in another form", func(t *testing.T) {}, reordered},
				{"an audit log due for rotation", func(t *testing.T) {
					os.Truncate(h.cfg.AuditLog, hook.MaxAuditLog-100)
				}, h.state},
			} {
				t.Run("to clawos-hook: "+c.name, func(t *testing.T) {
					prestart(t)
					c.change(t)
					os.Remove(fallback + ".stdin")
					if code, stderr := run(t, bin, fallback, c.state); code != 7 {
						t.Fatalf("exit %d, want clawos-hook's (7): %s", code, stderr)
					}
					if got := mustRead(t, fallback+".stdin"); !bytes.Equal(got, c.state) {
						t.Errorf("clawos-hook's standard input %q, want %q", got, c.state)
					}
					if _, err := os.Stat(record); err != nil {
						t.Errorf("the state record was removed: %v", err)
					}
					os.Truncate(h.cfg.AuditLog, 0)
					if code, stderr := run(t, bin, h.hookBin, h.state); code != 0 {
						t.Fatalf("clawos-hook: exit %d: %s", code, stderr)
					}
					gone(t)
				})
			}
		})
	}
}

// writeFile replaces the content of an existing file, keeping its mode.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
