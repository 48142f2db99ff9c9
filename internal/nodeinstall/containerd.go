package nodeinstall

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/clawos/clawos-security/internal/annotations"
	"github.com/clawos/clawos-security/internal/atomicfile"
)

// DropIn is where the clawos runtime handler's containerd configuration
// goes on the node, and DropInGlob what containerd's imports must name.
const (
	DropIn     = "/etc/containerd/conf.d/clawos.toml"
	DropInGlob = "/etc/containerd/conf.d/*.toml"
	// ContainerdConfig is containerd's main configuration.
	ContainerdConfig = "/etc/containerd/config.toml"
	// KubeletConfig is where kubeadm (and most distributions) keep the
	// kubelet's configuration, whose cgroupDriver the runtime must match.
	KubeletConfig = "/var/lib/kubelet/config.yaml"
)

// Containerd is what ConfigureContainerd found and did.
type Containerd struct {
	// Version is the configuration's version: 2 (containerd 1.6, 1.7) or
	// 3 (containerd 2.x).
	Version int
	// SystemdCgroup is the cgroup driver the handler uses, and DriverFrom
	// where that was read.
	SystemdCgroup bool
	DriverFrom    string
	// Changed: a file was written, and containerd must be restarted to
	// read it.
	Changed bool
}

// ConfigureContainerd writes the clawos runtime handler's drop-in under
// host (DropIn) for the node's containerd configuration version, with the
// node's cgroup driver, and makes ContainerdConfig import it, each file
// written atomically and only when its content changes. bin is the
// wrapper's path on the node.
func ConfigureContainerd(host, bin string) (*Containerd, error) {
	cfgPath := filepath.Join(host, ContainerdConfig)
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("containerd's configuration: %w", err)
	}
	var doc map[string]any
	if err := toml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", ContainerdConfig, err)
	}
	c := &Containerd{}
	switch v := doc["version"].(type) {
	case int64:
		c.Version = int(v)
	case nil:
		c.Version = 1
	}
	if c.Version != 2 && c.Version != 3 {
		return nil, fmt.Errorf("%s: configuration version %d: want 2 (containerd 1.6, 1.7) or 3 (containerd 2.x); migrate it with `containerd config migrate`", ContainerdConfig, c.Version)
	}
	c.SystemdCgroup, c.DriverFrom = cgroupDriver(host, doc, c.Version)
	content, err := dropIn(doc, c.Version, bin, c.SystemdCgroup)
	if err != nil {
		return nil, err
	}
	changed, err := writeIfChanged(filepath.Join(host, DropIn), content, 0o644)
	if err != nil {
		return nil, err
	}
	c.Changed = changed
	withImport, err := addImport(raw, doc)
	if err != nil {
		return nil, err
	}
	if changed, err = writeIfChanged(cfgPath, withImport, 0o644); err != nil {
		return nil, err
	}
	c.Changed = c.Changed || changed
	return c, nil
}

// criPlugin is the CRI plugin whose runtimes table holds the handlers, by
// configuration version.
func criPlugin(version int) string {
	if version == 3 {
		return "io.containerd.cri.v1.runtime"
	}
	return "io.containerd.grpc.v1.cri"
}

// dropIn is the drop-in's content. containerd merges an imported file by
// plugin: a plugin's section in the import replaces the whole section of
// the main file (containerd 1.6 through 2.x: "maps merged by keys, values
// replaced entirely"), so a drop-in holding only the clawos handler would
// take the node's other handlers and CRI settings away (containerd 1.6's
// config dump showed its runc handler gone). The drop-in therefore carries
// the CRI plugin's section of the node's config.toml as it is, with the
// clawos handler added; install-node rewrites it from config.toml at every
// run.
func dropIn(doc map[string]any, version int, bin string, systemd bool) ([]byte, error) {
	section := map[string]any{}
	if plugins, ok := doc["plugins"].(map[string]any); ok {
		if s, ok := plugins[criPlugin(version)].(map[string]any); ok {
			section = s
		}
	}
	ctr, _ := section["containerd"].(map[string]any)
	if ctr == nil {
		ctr = map[string]any{}
		section["containerd"] = ctr
	}
	runtimes, _ := ctr["runtimes"].(map[string]any)
	if runtimes == nil {
		runtimes = map[string]any{}
		ctr["runtimes"] = runtimes
	}
	runtimes["clawos"] = map[string]any{
		"runtime_type":          "io.containerd.runc.v2",
		"pod_annotations":       annotations.PodPatterns,
		"container_annotations": annotations.ContainerPatterns,
		"options":               map[string]any{"BinaryName": bin, "SystemdCgroup": systemd},
	}
	body, err := toml.Marshal(map[string]any{"version": version, "plugins": map[string]any{criPlugin(version): section}})
	if err != nil {
		return nil, fmt.Errorf("encode the drop-in: %w", err)
	}
	head := `# Written by clawos-hook install-node: the "clawos" runtime handler (a
# Kubernetes RuntimeClass) runs containers through clawos-runc, which
# confines those annotated io.clawos.whitelist and execs runc for
# everything else. containerd replaces a plugin's whole section with an
# import's, so this file carries the node's ` + criPlugin(version) + `
# section from config.toml as it was at install, plus the handler: after
# editing that section in config.toml, run the installer again (restart
# the clawos-installer pod). See docs/kubernetes.md.
`
	return append([]byte(head), body...), nil
}

// cgroupDriver reads the node's cgroup driver: the kubelet's cgroupDriver
// (the runtime must match it), else the runc handler's SystemdCgroup in
// containerd's configuration, else containerd's default, cgroupfs.
func cgroupDriver(host string, doc map[string]any, version int) (bool, string) {
	if b, err := os.ReadFile(filepath.Join(host, KubeletConfig)); err == nil {
		if m := regexp.MustCompile(`(?m)^cgroupDriver:\s*"?(systemd|cgroupfs)"?\s*$`).FindSubmatch(b); m != nil {
			return string(m[1]) == "systemd", KubeletConfig
		}
	}
	var cur any = doc
	for _, k := range []string{"plugins", criPlugin(version), "containerd", "runtimes", "runc", "options", "SystemdCgroup"} {
		m, ok := cur.(map[string]any)
		if !ok {
			return false, "containerd's default (cgroupfs)"
		}
		cur = m[k]
	}
	if v, ok := cur.(bool); ok {
		return v, ContainerdConfig + " (the runc handler's SystemdCgroup)"
	}
	return false, "containerd's default (cgroupfs)"
}

var importsLine = regexp.MustCompile(`(?m)^imports\s*=\s*(\[.*\])\s*$`)
var versionLine = regexp.MustCompile(`(?m)^version\s*=\s*\d+\s*$`)

// addImport returns raw with DropInGlob in its top-level imports: the
// existing single-line array extended, or a new line after version.
func addImport(raw []byte, doc map[string]any) ([]byte, error) {
	var have []string
	switch v := doc["imports"].(type) {
	case nil:
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("%s: imports holds a %T", ContainerdConfig, x)
			}
			have = append(have, s)
		}
	default:
		return nil, fmt.Errorf("%s: imports is a %T, not an array", ContainerdConfig, v)
	}
	if slices.Contains(have, DropInGlob) || slices.Contains(have, DropIn) {
		return raw, nil
	}
	quoted := make([]string, 0, len(have)+1)
	for _, s := range append(have, DropInGlob) {
		quoted = append(quoted, strconv.Quote(s))
	}
	line := "imports = [" + strings.Join(quoted, ", ") + "]"
	if doc["imports"] != nil {
		if !importsLine.Match(raw) {
			return nil, fmt.Errorf("%s: imports spans several lines; add %q to it by hand", ContainerdConfig, DropInGlob)
		}
		return importsLine.ReplaceAll(raw, []byte(line)), nil
	}
	loc := versionLine.FindIndex(raw)
	if loc == nil {
		return nil, fmt.Errorf("%s: no top-level version line to put imports after", ContainerdConfig)
	}
	out := append([]byte{}, raw[:loc[1]]...)
	out = append(out, []byte("\n"+line)...)
	return append(out, raw[loc[1]:]...), nil
}

// writeIfChanged writes data to path atomically unless it already holds
// exactly that, creating its directory; it reports whether it wrote.
func writeIfChanged(path string, data []byte, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, err
	}
	if err := atomicfile.WriteFile(path, data, mode); err != nil {
		return false, err
	}
	return true, nil
}
