package hook

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/atomicfile"
	"github.com/clawos/clawos-security/translate"
)

// RuncCommand is what the runtime wrapper needs from runc's command line.
type RuncCommand struct {
	Command string // create, start, delete, exec, ...
	Bundle  string // create and run: --bundle, or the working directory
	Log     string // --log: where runc (and a refusal of ours) writes JSON log lines
	ID      string // the container id
}

// runc's flags that take a value, global and per command.
var runcValueFlags = map[string]bool{
	"--log": true, "--log-format": true, "--root": true, "--criu": true, "--rootless": true,
	"--bundle": true, "-b": true, "--console-socket": true, "--pid-file": true, "--preserve-fds": true,
	"--process": true, "-p": true, "--cwd": true, "--env": true, "-e": true, "--user": true, "-u": true,
	"--additional-gids": true, "-g": true, "--process-label": true, "--apparmor": true, "--cap": true, "-c": true,
	"--signal": true, "-s": true, "--format": true, "-f": true,
}

// ParseRuncCommand reads runc's command line (without the program name).
// cwd is the working directory, runc's default bundle.
func ParseRuncCommand(args []string, cwd string) RuncCommand {
	rc := RuncCommand{Bundle: cwd}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if strings.HasPrefix(a, "-") {
			if !hasVal && runcValueFlags[name] && i+1 < len(args) {
				i++
				val = args[i]
			}
			switch name {
			case "--log":
				rc.Log = val
			case "--bundle", "-b":
				rc.Bundle = val
			}
			continue
		}
		if rc.Command == "" {
			rc.Command = a
		} else if rc.ID == "" {
			rc.ID = a
		}
	}
	if rc.Bundle != "" && !filepath.IsAbs(rc.Bundle) {
		rc.Bundle = filepath.Join(cwd, rc.Bundle)
	}
	return rc
}

// WrapCreate applies the whitelist a bundle's config asks for, for runc's
// create and run; other commands pass untouched (nil outcome). The config
// is replaced atomically, and only when the container is annotated.
func WrapCreate(rc RuncCommand, cfg Config, log logrus.FieldLogger) (*Outcome, error) {
	if rc.Command != "create" && rc.Command != "run" {
		return nil, nil
	}
	spec, err := ReadBundleConfig(rc.Bundle)
	if err != nil {
		return nil, err
	}
	out, err := Apply(spec, cfg, log)
	if out == nil || err != nil {
		return out, err
	}
	b, err := translate.MarshalSpec(spec)
	if err != nil {
		return out, err
	}
	return out, atomicfile.WriteFile(filepath.Join(rc.Bundle, "config.json"), b, 0o644)
}

// LogRefusal appends the reason of a refusal to runc's --log file in runc's
// JSON log format, where containerd reads the error it reports ("OCI
// runtime create failed: ...").
func LogRefusal(path string, err error) {
	if path == "" {
		return
	}
	line, _ := json.Marshal(map[string]string{"level": "error", "msg": "clawos: " + err.Error(),
		"time": time.Now().UTC().Format(time.RFC3339Nano), "code": clawerr.CodeOf(err).String()})
	f, ferr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	f.Write(append(line, '\n'))
}
