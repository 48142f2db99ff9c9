package nodeinstall

import (
	"context"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/translate/schema"
)

func node(t *testing.T, config, kubelet string) string {
	t.Helper()
	host := t.TempDir()
	os.MkdirAll(filepath.Join(host, "etc/containerd"), 0o755)
	if err := os.WriteFile(filepath.Join(host, ContainerdConfig), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	if kubelet != "" {
		os.MkdirAll(filepath.Join(host, "var/lib/kubelet"), 0o755)
		os.WriteFile(filepath.Join(host, KubeletConfig), []byte(kubelet), 0o644)
	}
	return host
}

// TestConfigureContainerd covers both configuration versions: the drop-in
// carries the node's CRI section with the handler added under the
// version's plugin, the cgroup driver comes from the kubelet, else the
// runc handler, else containerd's default; imports gains the drop-in's
// directory (a new line, or the existing array); a second run changes
// nothing; version 1 and a multi-line imports are refused.
func TestConfigureContainerd(t *testing.T) {
	for _, c := range []struct {
		name, config, kubelet string
		plugin                string
		systemd               bool
		imports               string
	}{
		{"v2, kubelet systemd", "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause:3.9\"\n", "cgroupDriver: systemd\n",
			"io.containerd.grpc.v1.cri", true, `imports = ["/etc/containerd/conf.d/*.toml"]`},
		{"v2, runc handler's driver, existing imports", "version = 2\nimports = [\"/etc/containerd/other.toml\"]\n[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n", "",
			"io.containerd.grpc.v1.cri", true, `imports = ["/etc/containerd/other.toml", "/etc/containerd/conf.d/*.toml"]`},
		{"v3, default driver", "version = 3\n[plugins.\"io.containerd.cri.v1.runtime\".containerd]\n  default_runtime_name = \"runc\"\n", "",
			"io.containerd.cri.v1.runtime", false, `imports = ["/etc/containerd/conf.d/*.toml"]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			host := node(t, c.config, c.kubelet)
			res, err := ConfigureContainerd(host, "/opt/clawos/bin/clawos-runc")
			if err != nil {
				t.Fatal(err)
			}
			if !res.Changed || res.SystemdCgroup != c.systemd {
				t.Errorf("%+v, want changed and SystemdCgroup %v", res, c.systemd)
			}
			cfg, _ := os.ReadFile(filepath.Join(host, ContainerdConfig))
			if !strings.Contains(string(cfg), c.imports+"\n") {
				t.Errorf("config.toml:\n%s\nwant %s", cfg, c.imports)
			}
			raw, _ := os.ReadFile(filepath.Join(host, DropIn))
			var doc map[string]any
			if err := toml.Unmarshal(raw, &doc); err != nil {
				t.Fatalf("the drop-in: %v\n%s", err, raw)
			}
			section := doc["plugins"].(map[string]any)[c.plugin].(map[string]any)
			h := section["containerd"].(map[string]any)["runtimes"].(map[string]any)["clawos"].(map[string]any)
			opts := h["options"].(map[string]any)
			if opts["BinaryName"] != "/opt/clawos/bin/clawos-runc" || opts["SystemdCgroup"] != c.systemd || h["runtime_type"] != "io.containerd.runc.v2" {
				t.Errorf("the handler: %v", h)
			}
			if strings.Contains(c.config, "sandbox_image") && section["sandbox_image"] != "pause:3.9" {
				t.Errorf("the node's CRI settings are not carried: %v", section)
			}
			again, err := ConfigureContainerd(host, "/opt/clawos/bin/clawos-runc")
			if err != nil || again.Changed {
				t.Errorf("a second run: %+v %v", again, err)
			}
		})
	}
	for _, bad := range []string{"[plugins.cri]\n", "version = 2\nimports = [\n  \"/a.toml\",\n]\n"} {
		if _, err := ConfigureContainerd(node(t, bad, ""), "/x"); err == nil {
			t.Errorf("accepted:\n%s", bad)
		}
	}
}

// TestSyncWhitelists installs a ConfigMap's valid whitelists, refuses
// invalid and escaping entries while keeping the node's copy of a refused
// name, and removes what the ConfigMap dropped.
func TestSyncWhitelists(t *testing.T) {
	valid, err := os.ReadFile("../../test/testdata/probe.whitelist.json")
	if err != nil {
		t.Fatal(err)
	}
	src, dst := t.TempDir(), t.TempDir()
	data := filepath.Join(src, "..data")
	os.Mkdir(data, 0o755)
	os.WriteFile(filepath.Join(data, "good.json"), valid, 0o644)
	os.WriteFile(filepath.Join(data, "bad.json"), []byte(`{"syscalls": "all"}`), 0o644)
	for _, n := range []string{"good.json", "bad.json"} {
		os.Symlink("..data/"+n, filepath.Join(src, n))
	}
	outside := filepath.Join(t.TempDir(), "x.json")
	os.WriteFile(outside, valid, 0o644)
	os.Symlink(outside, filepath.Join(src, "escape.json"))
	os.WriteFile(filepath.Join(dst, "bad.json"), valid, 0o644) // the node's good copy
	os.WriteFile(filepath.Join(dst, "gone.json"), valid, 0o644)
	res, err := SyncWhitelists(src, dst, schema.Plan, logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(res.Installed, ",") != "good.json" || strings.Join(res.Removed, ",") != "gone.json" ||
		res.Refused["bad.json"] == "" || !strings.Contains(res.Refused["escape.json"], "leads out") {
		t.Errorf("%+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "bad.json")); string(b) != string(valid) {
		t.Error("a refused update replaced the node's copy")
	}
	if _, err := os.Stat(filepath.Join(dst, "escape.json")); err == nil {
		t.Error("an escaping entry was installed")
	}
	if res, _ := SyncWhitelists(src, dst, schema.Plan, logrus.New()); len(res.Installed) != 0 || strings.Join(res.Unchanged, ",") != "good.json" {
		t.Errorf("a second sync: %+v", res)
	}
}

// TestAPI checks the two API calls the installer makes against a TLS
// server that checks them: the node's label as a strategic merge patch,
// a pod's Warning event; both with the bearer token, over verified TLS.
func TestAPI(t *testing.T) {
	var got []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Content-Type")+" "+string(body))
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	api := NewAPI(srv.URL, "tok", pool)
	ctx := context.Background()
	if err := api.LabelNode(ctx, "node-1"); err != nil {
		t.Fatal(err)
	}
	if err := api.Event(ctx, "clawos-system", "clawos-installer-x", "Warning", "WhitelistRefused", "whitelist a.json was not installed"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != `PATCH /api/v1/nodes/node-1 application/strategic-merge-patch+json {"metadata":{"labels":{"clawos.io/runtime":"ready"}}}` ||
		!strings.HasPrefix(got[1], "POST /api/v1/namespaces/clawos-system/events application/json ") ||
		!strings.Contains(got[1], `"involvedObject":{"apiVersion":"v1","kind":"Pod","name":"clawos-installer-x","namespace":"clawos-system"}`) ||
		!strings.Contains(got[1], `"reason":"WhitelistRefused"`) {
		t.Errorf("requests:\n%s", strings.Join(got, "\n"))
	}
	if err := NewAPI(srv.URL, "wrong", pool).LabelNode(ctx, "node-1"); err == nil {
		t.Error("an API refusal was not an error")
	}
	if err := NewAPI(srv.URL, "tok", x509.NewCertPool()).LabelNode(ctx, "node-1"); err == nil {
		t.Error("an unverified certificate was accepted")
	}
}
