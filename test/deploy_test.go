package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"github.com/pelletier/go-toml/v2"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/translate"
)

// deployObjects decodes every document of the deploy/ manifests into its
// Kubernetes API type, strictly: an unknown or misspelt field, a wrong
// type or an unknown kind fails.
func deployObjects(t *testing.T) map[string][]any {
	t.Helper()
	files, err := filepath.Glob("../deploy/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/: %v", err)
	}
	out := map[string][]any{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(raw), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", file, i, err)
			}
			var obj any
			switch tm.APIVersion + "/" + tm.Kind {
			case "node.k8s.io/v1/RuntimeClass":
				obj = &nodev1.RuntimeClass{}
			case "apps/v1/DaemonSet":
				obj = &appsv1.DaemonSet{}
			case "v1/Pod":
				obj = &corev1.Pod{}
			case "v1/Namespace":
				obj = &corev1.Namespace{}
			case "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy":
				obj = &admissionv1.ValidatingAdmissionPolicy{}
			case "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding":
				obj = &admissionv1.ValidatingAdmissionPolicyBinding{}
			case "v1/ServiceAccount":
				obj = &corev1.ServiceAccount{}
			case "rbac.authorization.k8s.io/v1/ClusterRole":
				obj = &rbacv1.ClusterRole{}
			case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
				obj = &rbacv1.ClusterRoleBinding{}
			case "rbac.authorization.k8s.io/v1/Role":
				obj = &rbacv1.Role{}
			case "rbac.authorization.k8s.io/v1/RoleBinding":
				obj = &rbacv1.RoleBinding{}
			default:
				t.Fatalf("%s document %d: unexpected kind %s %s", file, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Errorf("%s document %d (%s): %v", file, i, tm.Kind, err)
				continue
			}
			out[tm.Kind] = append(out[tm.Kind], obj)
		}
	}
	return out
}

// meta checks what every object's metadata must satisfy: a DNS subdomain
// name and valid annotation keys and sizes.
func meta(t *testing.T, kind string, m metav1.ObjectMeta) {
	for _, msg := range validation.IsDNS1123Subdomain(m.Name) {
		t.Errorf("%s %q: name: %s", kind, m.Name, msg)
	}
	for _, e := range apivalidation.ValidateAnnotations(m.Annotations, field.NewPath("metadata", "annotations")) {
		t.Errorf("%s %q: %v", kind, m.Name, e)
	}
}

// handlerAnnotations reads the pod_annotations patterns of the shipped
// containerd snippet.
func handlerAnnotations(t *testing.T) []string {
	b, err := os.ReadFile("../deploy/containerd-clawos.toml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*pod_annotations\s*=\s*(\[.*\])\s*$`).FindSubmatch(b)
	var pats []string
	if m == nil || json.Unmarshal(m[1], &pats) != nil {
		t.Fatal("deploy/containerd-clawos.toml has no pod_annotations list")
	}
	if !bytes.Contains(b, []byte(`runtimes.clawos]`)) {
		t.Fatal(`deploy/containerd-clawos.toml defines no "clawos" handler`)
	}
	return pats
}

// TestDeployManifests validates the deployment manifests against the
// Kubernetes API types and against each other: the RuntimeClass names the
// handler the containerd snippet defines, the example pod uses it, its
// annotations are ones containerd passes through and name shipped
// whitelists and existing containers, and the installer runs the shipped
// script.
func TestDeployManifests(t *testing.T) {
	objs := deployObjects(t)
	for _, kind := range []string{"RuntimeClass", "DaemonSet", "Pod", "Namespace"} {
		if len(objs[kind]) == 0 {
			t.Errorf("deploy/ has no %s", kind)
		}
	}
	var rcName string
	for _, o := range objs["RuntimeClass"] {
		rc := o.(*nodev1.RuntimeClass)
		meta(t, "RuntimeClass", rc.ObjectMeta)
		if rc.Handler != "clawos" {
			t.Errorf("RuntimeClass handler %q, want the snippet's clawos", rc.Handler)
		}
		for _, msg := range validation.IsDNS1123Label(rc.Handler) {
			t.Errorf("RuntimeClass handler: %s", msg)
		}
		rcName = rc.Name
	}
	pats := handlerAnnotations(t)
	for _, o := range objs["Pod"] {
		p := o.(*corev1.Pod)
		meta(t, "Pod", p.ObjectMeta)
		if p.Spec.RuntimeClassName == nil || *p.Spec.RuntimeClassName != rcName {
			t.Errorf("pod %s does not use the RuntimeClass %q", p.Name, rcName)
		}
		containers := map[string]bool{}
		for _, c := range p.Spec.Containers {
			containers[c.Name] = true
		}
		for k, v := range p.Annotations {
			passed := false
			for _, pat := range pats {
				if ok, _ := path.Match(pat, k); ok {
					passed = true
				}
			}
			if !passed {
				t.Errorf("pod %s: containerd does not pass annotation %s (pod_annotations %v)", p.Name, k, pats)
			}
			if prefix, name, ok := strings.Cut(k, "/"); ok && !containers[name] {
				t.Errorf("pod %s: %s names no container of the pod", p.Name, k)
			} else if ok && prefix+"/" == runcargs.ContainerWhitelistPrefix || k == hook.AnnotationWhitelist {
				if _, err := os.Stat(filepath.Join("../examples", v+".whitelist.json")); err != nil {
					t.Errorf("pod %s: %s names %q, not a shipped whitelist: %v", p.Name, k, v, err)
				}
			}
		}
	}
	for _, o := range objs["Namespace"] {
		ns := o.(*corev1.Namespace)
		// The installer needs hostPath: Pod Security Admission must say so
		// explicitly, not depend on the cluster's default level.
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
			t.Errorf("namespace %s: pod-security.kubernetes.io/enforce %q, want privileged (the installer uses hostPath)",
				ns.Name, ns.Labels["pod-security.kubernetes.io/enforce"])
		}
	}
	for _, o := range objs["DaemonSet"] {
		ds := o.(*appsv1.DaemonSet)
		meta(t, "DaemonSet", ds.ObjectMeta)
		sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
			t.Errorf("DaemonSet %s: its selector does not match its pods (%v)", ds.Name, err)
		}
		hostMounts := map[string]string{} // volume name -> hostPath
		for _, v := range ds.Spec.Template.Spec.Volumes {
			if v.HostPath != nil {
				hostMounts[v.Name] = v.HostPath.Path
			}
		}
		for _, c := range append(ds.Spec.Template.Spec.InitContainers, ds.Spec.Template.Spec.Containers...) {
			// The installer's --host is the node's root, mounted there.
			if i := slices.Index(c.Command, "--host"); i >= 0 && i+1 < len(c.Command) {
				if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
					return m.MountPath == c.Command[i+1] && hostMounts[m.Name] == "/"
				}) {
					t.Errorf("DaemonSet %s, %s: --host %s is not the node's root mounted there", ds.Name, c.Name, c.Command[i+1])
				}
			}
			// It runs one of the image's programs, with flags it has.
			prog, ok := strings.CutPrefix(strings.Join(c.Command[:min(1, len(c.Command))], ""), "/opt/clawos/bin/")
			if !ok || len(c.Command) < 2 {
				t.Errorf("DaemonSet %s, %s: runs %v, not a program of the image's /opt/clawos/bin", ds.Name, c.Name, c.Command)
				continue
			}
			help, _ := exec.Command(built(t, "../bin/"+prog), c.Command[1], "-h").CombinedOutput()
			for _, a := range c.Command[2:] {
				if f, ok := strings.CutPrefix(a, "--"); ok && !regexp.MustCompile(`(?m)^\s+-`+regexp.QuoteMeta(f)+`\b`).Match(help) {
					t.Errorf("DaemonSet %s, %s: %s %s has no flag --%s:\n%s", ds.Name, c.Name, prog, c.Command[1], f, help)
				}
			}
		}
		// It may label its node, and nothing more.
		if sa := ds.Spec.Template.Spec.ServiceAccountName; sa == "" {
			t.Errorf("DaemonSet %s has no service account to label its node with", ds.Name)
		}
	}
	for _, o := range objs["Role"] {
		r := o.(*rbacv1.Role)
		for _, rule := range r.Rules {
			if !slices.Equal(rule.Resources, []string{"events"}) || !slices.Equal(rule.Verbs, []string{"create"}) {
				t.Errorf("Role %s grants more than creating events: %+v", r.Name, rule)
			}
		}
	}
	for _, o := range objs["ClusterRole"] {
		r := o.(*rbacv1.ClusterRole)
		for _, rule := range r.Rules {
			if !slices.Equal(rule.Resources, []string{"nodes"}) || slices.ContainsFunc(rule.Verbs, func(v string) bool { return v != "get" && v != "patch" }) {
				t.Errorf("ClusterRole %s grants more than get and patch on nodes: %+v", r.Name, rule)
			}
		}
	}
}

// TestInstallNode runs the node installer (deploy/install-node.sh, which
// runs clawos-node install) against scratch node roots: the programs
// and runtime.json (kept when present) installed atomically; the
// ConfigMap's whitelists validated, with entries leading out of it,
// directories and invalid whitelists refused by name and never installed,
// and removals reaching the node; containerd 1.6's default configuration
// given the clawos handler as a drop-in it imports, with the kubelet's
// cgroup driver, which containerd 1.6 itself loads (containerd config dump,
// in a mount namespace where the scratch root's /etc/containerd is the
// node's); a second run changes nothing; a relative --prefix is refused.
func TestInstallNode(t *testing.T) {
	for _, p := range []string{"clawos-init", "clawos-hook", "clawos-runc", "clawos-poststop", "clawos-policy"} {
		built(t, "../bin/"+p)
	}
	if _, err := exec.LookPath("containerd"); err != nil {
		t.Fatalf("containerd is missing: .ci/setup installs it")
	}
	host := t.TempDir()
	def, err := exec.Command("containerd", "config", "default").Output()
	if err != nil {
		t.Fatalf("containerd config default: %v", err)
	}
	os.MkdirAll(filepath.Join(host, "etc/containerd"), 0o755)
	os.WriteFile(filepath.Join(host, "etc/containerd/config.toml"), def, 0o644)
	os.MkdirAll(filepath.Join(host, "var/lib/kubelet"), 0o755)
	os.WriteFile(filepath.Join(host, "var/lib/kubelet/config.yaml"), []byte("kind: KubeletConfiguration\ncgroupDriver: systemd\n"), 0o644)

	// A ConfigMap volume: entries are symlinks into ..data.
	cm := t.TempDir()
	data := filepath.Join(cm, "..2026_12_02")
	os.MkdirAll(data, 0o755)
	os.WriteFile(filepath.Join(data, "probe.json"), mustRead(t, probeWhitelist), 0o644)
	os.WriteFile(filepath.Join(data, "broken.json"), []byte(`{"agent": 1}`), 0o644)
	os.Symlink("..2026_12_02", filepath.Join(cm, "..data"))
	for _, n := range []string{"probe.json", "broken.json"} {
		os.Symlink("..data/"+n, filepath.Join(cm, n))
	}
	secret := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(secret, []byte("root:secret"), 0o600)
	os.Symlink(secret, filepath.Join(cm, "evil.json"))
	os.Mkdir(filepath.Join(cm, "dir.json"), 0o755)
	// A whitelist the ConfigMap no longer has.
	os.MkdirAll(filepath.Join(host, "etc/clawos/whitelists"), 0o755)
	os.WriteFile(filepath.Join(host, "etc/clawos/whitelists/old.json"), mustRead(t, probeWhitelist), 0o644)

	install := func(args ...string) (string, error) {
		out, err := exec.Command("sh", append([]string{"../deploy/install-node.sh", "--host", host}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := install("--whitelists", cm, "--containerd")
	if err == nil {
		t.Errorf("the installer accepted refused whitelists:\n%s", out)
	}
	for _, want := range []string{"refusing whitelist evil.json: it leads out", "refusing whitelist dir.json: not a regular file",
		"refusing whitelist broken.json: not a valid whitelist", "removed: no longer in the ConfigMap",
		"configuration version 2, cgroup driver systemd (from /var/lib/kubelet/config.yaml)"} {
		if !strings.Contains(out, want) {
			t.Errorf("the installer does not say %q:\n%s", want, out)
		}
	}
	for _, f := range []string{"usr/local/bin/clawos-runc", "usr/local/bin/clawos-hook", "usr/local/bin/clawos-poststop", "usr/local/bin/clawos-init", "usr/local/bin/clawos-policy",
		"etc/clawos/runtime.json", "etc/clawos/whitelists/probe.json", "etc/containerd/conf.d/clawos.toml"} {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	for _, bad := range []string{"evil.json", "dir.json", "broken.json", "old.json"} {
		if _, err := os.Lstat(filepath.Join(host, "etc/clawos/whitelists", bad)); err == nil {
			t.Errorf("whitelists/%s is on the node", bad)
		}
	}
	prewarmed(t, host)
	// containerd 1.6 loads the result: the handler, its wrapper and the
	// node's cgroup driver.
	dump, err := exec.Command("unshare", "-m", "sh", "-c",
		"mount --make-rprivate / && mount --bind \"$0\"/etc/containerd /etc/containerd && containerd --config /etc/containerd/config.toml config dump", host).CombinedOutput()
	if err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, dump)
	}
	var conf struct {
		Plugins map[string]struct {
			Containerd struct {
				Runtimes map[string]struct {
					RuntimeType          string         `toml:"runtime_type"`
					PodAnnotations       []string       `toml:"pod_annotations"`
					ContainerAnnotations []string       `toml:"container_annotations"`
					Options              map[string]any `toml:"options"`
				} `toml:"runtimes"`
			} `toml:"containerd"`
		} `toml:"plugins"`
	}
	if err := toml.Unmarshal(dump, &conf); err != nil {
		t.Fatalf("containerd config dump: %v\n%s", err, dump)
	}
	h, ok := conf.Plugins["io.containerd.grpc.v1.cri"].Containerd.Runtimes["clawos"]
	if !ok || h.RuntimeType != "io.containerd.runc.v2" || h.Options["BinaryName"] != "/usr/local/bin/clawos-runc" || h.Options["SystemdCgroup"] != true ||
		!slices.Contains(h.PodAnnotations, "whitelist.clawos.io/*") || !slices.Contains(h.ContainerAnnotations, "io.clawos.*") {
		t.Errorf("containerd 1.6 does not load the clawos handler as written: %+v\n%s", h, dump)
	}
	// The handler is the one the by-hand snippet documents.
	if !slices.Equal(h.PodAnnotations, handlerAnnotations(t)) {
		t.Errorf("the drop-in passes pod annotations %v, deploy/containerd-clawos.toml %v", h.PodAnnotations, handlerAnnotations(t))
	}
	if _, ok := conf.Plugins["io.containerd.grpc.v1.cri"].Containerd.Runtimes["runc"]; !ok {
		t.Errorf("the node's own runc handler is gone:\n%s", dump)
	}
	// A second run with a kept runtime.json and the same ConfigMap (the
	// refused entries taken out) changes nothing.
	cfg := filepath.Join(host, "etc/clawos/runtime.json")
	os.WriteFile(cfg, []byte(`{"apparmor": "off"}`), 0o644)
	for _, n := range []string{"evil.json", "dir.json", "broken.json"} {
		os.Remove(filepath.Join(cm, n))
	}
	before, _ := os.ReadFile(filepath.Join(host, "etc/containerd/config.toml"))
	if out, err := install("--whitelists", cm, "--containerd"); err != nil || !strings.Contains(out, "conf.d/clawos.toml unchanged") {
		t.Errorf("a second run: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(filepath.Join(host, "etc/containerd/config.toml")); !bytes.Equal(before, after) {
		t.Errorf("a second run changed containerd's config.toml")
	}
	if b, _ := os.ReadFile(cfg); string(b) != `{"apparmor": "off"}` {
		t.Errorf("the installer overwrote the node's configuration: %s", b)
	}
	if _, err := hook.ReadConfig(filepath.Join("../deploy/runtime.json"), false); err != nil {
		t.Errorf("deploy/runtime.json: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(host, "usr/local/bin/.*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
	// Another prefix (a node whose /usr/local is read-only).
	other := t.TempDir()
	if out, err := exec.Command("sh", "../deploy/install-node.sh", "--host", other, "--prefix", "/opt/clawos").CombinedOutput(); err != nil {
		t.Fatalf("--prefix /opt/clawos: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(other, "opt/clawos/bin/clawos-runc")); err != nil {
		t.Errorf("--prefix /opt/clawos: %v", err)
	}
	if out, err := exec.Command("sh", "../deploy/install-node.sh", "--host", other, "--prefix", "opt").CombinedOutput(); err == nil {
		t.Errorf("a relative --prefix was accepted: %s", out)
	}
}

// prewarmed checks that the installer left the node's plan cache holding
// probe.json for the node's hook: the installed clawos-hook, with the
// node's runtime.json, creates a probe.json container while the installed
// clawos-policy cannot be executed (a miss would run it); with the cache
// emptied the same create fails, so the check can fail.
func prewarmed(t *testing.T, host string) {
	t.Helper()
	bin := filepath.Join(host, "usr/local/bin")
	cfg, err := hook.ReadConfig(filepath.Join(host, "etc/clawos/runtime.json"), false)
	if err != nil {
		t.Fatal(err)
	}
	cache := filepath.Join(host, "var/cache/clawos/plans")
	cfg.WhitelistDir, cfg.StateDir, cfg.AuditLog = filepath.Join(host, "etc/clawos/whitelists"), t.TempDir(), filepath.Join(t.TempDir(), "audit.jsonl")
	cfg.Init, cfg.Hook, cfg.Policy, cfg.PlanCache = filepath.Join(bin, "clawos-init"), filepath.Join(bin, "clawos-hook"), filepath.Join(bin, "clawos-policy"), cache
	cfg = cfg.WithDefaults(cfg.Hook)
	spec := specconv.Example()
	spec.Annotations = map[string]string{hook.AnnotationWhitelist: "probe"}
	spec.Process.Args = []string{"/clawos-probe", "call", "39"}
	spec.Process.NoNewPrivileges = false
	in, _ := json.Marshal(spec)
	precreate := func() ([]byte, error) {
		cmd := exec.Command(cfg.Hook, append(cfg.Args(), "precreate")...)
		cmd.Stdin = bytes.NewReader(in)
		return cmd.CombinedOutput()
	}
	if err := os.Chmod(cfg.Policy, 0o644); err != nil { // the identity (device, inode, size, mtime) stays
		t.Fatal(err)
	}
	defer os.Chmod(cfg.Policy, 0o755)
	if out, err := precreate(); err != nil || !bytes.Contains(out, []byte("clawos-init")) {
		t.Errorf("the installed hook did not find probe.json in the pre-warmed cache: %v\n%s", err, out)
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "*.json"))
	for _, e := range entries {
		os.Remove(e)
	}
	if out, err := precreate(); err == nil {
		t.Errorf("with the cache emptied and clawos-policy not executable, the create succeeded (the check above proves nothing):\n%s", out)
	}
}

// TestAdmissionPolicy: the ValidatingAdmissionPolicy refuses a pod that
// carries a ClawOS annotation without the clawos RuntimeClass (it would run
// unconfined) and admits the rest. Its CEL expressions are compiled and
// evaluated with cel-go, the CEL library Kubernetes uses, against sample
// pods, so a typo in an expression fails here; the binding denies.
func TestAdmissionPolicy(t *testing.T) {
	objs := deployObjects(t)
	if len(objs["ValidatingAdmissionPolicy"]) != 1 || len(objs["ValidatingAdmissionPolicyBinding"]) != 1 {
		t.Fatalf("want one ValidatingAdmissionPolicy and its binding in deploy/, have %d and %d",
			len(objs["ValidatingAdmissionPolicy"]), len(objs["ValidatingAdmissionPolicyBinding"]))
	}
	pol := objs["ValidatingAdmissionPolicy"][0].(*admissionv1.ValidatingAdmissionPolicy)
	bind := objs["ValidatingAdmissionPolicyBinding"][0].(*admissionv1.ValidatingAdmissionPolicyBinding)
	if bind.Spec.PolicyName != pol.Name || len(bind.Spec.ValidationActions) != 1 || bind.Spec.ValidationActions[0] != admissionv1.Deny {
		t.Errorf("binding %s: policy %q, actions %v; want %q and Deny", bind.Name, bind.Spec.PolicyName, bind.Spec.ValidationActions, pol.Name)
	}
	if pol.Spec.FailurePolicy == nil || *pol.Spec.FailurePolicy != admissionv1.Fail {
		t.Error("the policy must fail closed (failurePolicy: Fail)")
	}
	rules := pol.Spec.MatchConstraints.ResourceRules
	if len(rules) != 1 || strings.Join(rules[0].Resources, ",") != "pods" || !slices.Contains(rules[0].Operations, admissionv1.Create) ||
		!slices.Contains(rules[0].Operations, admissionv1.Update) {
		t.Errorf("the policy must match pod CREATE and UPDATE: %+v", rules)
	}
	env, err := cel.NewEnv(cel.Variable("object", cel.DynType), cel.Variable("oldObject", cel.DynType))
	if err != nil {
		t.Fatal(err)
	}
	var progs []cel.Program
	for _, v := range pol.Spec.Validations {
		ast, iss := env.Compile(v.Expression)
		if iss.Err() != nil {
			t.Fatalf("expression %q: %v", v.Expression, iss.Err())
		}
		prg, err := env.Program(ast)
		if err != nil {
			t.Fatal(err)
		}
		progs = append(progs, prg)
	}
	rc := func(s string) *string { return &s }
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		class       *string
		admit       bool
	}{
		{"annotated, no RuntimeClass", map[string]string{runcargs.AnnotationWhitelist: "ironclaw"}, nil, false},
		{"annotated, another RuntimeClass", map[string]string{runcargs.AnnotationWhitelist: "ironclaw"}, rc("runc"), false},
		{"per-container whitelist, no RuntimeClass", map[string]string{runcargs.ContainerWhitelistPrefix + "agent": "ironclaw"}, nil, false},
		{"a slice alone, no RuntimeClass", map[string]string{runcargs.AnnotationSlice: "agents"}, nil, false},
		{"per-container baseline, no RuntimeClass", map[string]string{runcargs.ContainerBaselinePrefix + "agent": "tokio"}, nil, false},
		{"annotated, clawos", map[string]string{runcargs.AnnotationWhitelist: "ironclaw"}, rc("clawos"), true},
		{"not annotated", nil, nil, true},
		{"other annotations", map[string]string{"example.com/team": "a", "clawos-notes": "x"}, nil, true},
		{"the example pod", nil, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: tc.annotations},
				Spec: corev1.PodSpec{RuntimeClassName: tc.class, Containers: []corev1.Container{{Name: "agent", Image: "x"}}}}
			if tc.name == "the example pod" {
				pod = *objs["Pod"][0].(*corev1.Pod)
			}
			raw, err := json.Marshal(pod)
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			if err := json.Unmarshal(raw, &obj); err != nil {
				t.Fatal(err)
			}
			admit := true
			for _, prg := range progs {
				out, _, err := prg.Eval(map[string]any{"object": obj, "oldObject": nil})
				if err != nil {
					t.Fatalf("evaluate: %v", err)
				}
				if ok, isBool := out.Value().(bool); !isBool {
					t.Fatalf("the expression gave %v, not a bool", out)
				} else if !ok {
					admit = false
				}
			}
			if admit != tc.admit {
				t.Errorf("admitted %v, want %v", admit, tc.admit)
			}
		})
	}
}

// TestImage builds the node installer image with `make image` (FROM
// scratch, in private podman storage) and checks it holds exactly the
// programs and configuration the installer DaemonSet runs, under the name
// deploy/installer.yaml gives it.
func TestImage(t *testing.T) {
	if os.Getenv(integrationEnv) == "" {
		t.Skipf("builds an image with podman; set %s=1 (make test does)", integrationEnv)
	}
	if _, err := exec.LookPath("podman"); err != nil {
		t.Fatal("podman is missing: .ci/setup installs it")
	}
	dir := t.TempDir()
	podman := fmt.Sprintf("podman --root %s --runroot %s --storage-driver vfs", filepath.Join(dir, "root"), filepath.Join(dir, "runroot"))
	const image = "localhost/clawos/clawos-security-installer:0.1.0"
	if out, err := exec.Command("make", "-C", "..", "image", "PODMAN="+podman, "IMAGE="+image).CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("sh", "-c", podman+" rmi -a -f >/dev/null 2>&1").Run() })
	// Its files: a container's export, as a tar listing.
	out, err := exec.Command("sh", "-c", "id=$("+podman+" create "+image+" /opt/clawos/bin/clawos-hook) && "+podman+" export $id | tar -t && "+podman+" rm $id >/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("export the image: %v\n%s", err, out)
	}
	var files []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if !strings.HasSuffix(l, "/") && !strings.HasPrefix(l, "dev/") && !strings.HasPrefix(l, "etc/") && !strings.HasPrefix(l, "proc/") &&
			!strings.HasPrefix(l, "run/") && !strings.HasPrefix(l, "sys/") {
			files = append(files, l)
		}
	}
	sort.Strings(files)
	want := []string{"opt/clawos/bin/clawos-hook", "opt/clawos/bin/clawos-init", "opt/clawos/bin/clawos-node", "opt/clawos/bin/clawos-policy", "opt/clawos/bin/clawos-poststop", "opt/clawos/bin/clawos-runc", "opt/clawos/deploy/runtime.json"}
	if !slices.Equal(files, want) {
		t.Errorf("the image holds %v, want %v", files, want)
	}
	// The DaemonSet runs that image and programs of it.
	for _, o := range deployObjects(t)["DaemonSet"] {
		ds := o.(*appsv1.DaemonSet)
		for _, c := range append(ds.Spec.Template.Spec.InitContainers, ds.Spec.Template.Spec.Containers...) {
			if c.Image != image {
				t.Errorf("DaemonSet %s, %s: image %s, want make image's %s", ds.Name, c.Name, c.Image, image)
			}
			if len(c.Command) == 0 || !slices.Contains(want, strings.TrimPrefix(c.Command[0], "/")) {
				t.Errorf("DaemonSet %s, %s: runs %v, which the image does not hold", ds.Name, c.Name, c.Command)
			}
		}
	}
}

// TestInstallNodeRestart runs clawos-node install's whole node path in a scratch
// node root that chroot can run in: runc (Debian's, at its Debian path,
// with its libraries), a systemctl that records what it is asked, and a
// listener on containerd's socket. The installer finds the node's runc for
// runtime.json, restarts containerd because its configuration changed,
// checks the socket and the wrapper (clawos-runc --version runs the node's
// runc through the installed configuration) and says so; a second run
// restarts nothing and checks again; without runc the check fails.
func TestInstallNodeRestart(t *testing.T) {
	if os.Getenv(integrationEnv) == "" || os.Geteuid() != 0 {
		if os.Getenv(integrationEnv) != "" {
			t.Fatal("chroot needs root")
		}
		t.Skipf("chroots into a scratch node root; set %s=1 as root (make test does)", integrationEnv)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal("runc is missing: .ci/setup installs it")
	}
	if runc, err = filepath.EvalSymlinks(runc); err != nil {
		t.Fatal(err)
	}
	host := t.TempDir()
	put := func(src, dst string, mode os.FileMode) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(host, filepath.Dir(dst)), 0o755)
		if err := os.WriteFile(filepath.Join(host, dst), b, mode); err != nil {
			t.Fatal(err)
		}
	}
	put(runc, "/usr/sbin/runc", 0o755)
	libs, err := exec.Command("ldd", runc).Output()
	if err != nil {
		t.Fatalf("ldd runc: %v", err)
	}
	for _, m := range regexp.MustCompile(`(/\S+\.so[.\d]*)`).FindAllString(string(libs), -1) {
		put(m, m, 0o755)
	}
	put("/bin/busybox", "/bin/sh", 0o755)
	os.MkdirAll(filepath.Join(host, "usr/bin"), 0o755)
	if err := os.WriteFile(filepath.Join(host, "usr/bin/systemctl"), []byte("#!/bin/sh\necho \"$@\" >> /systemctl.log\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	def, err := exec.Command("containerd", "config", "default").Output()
	if err != nil {
		t.Fatalf("containerd config default: %v", err)
	}
	os.MkdirAll(filepath.Join(host, "etc/containerd"), 0o755)
	os.WriteFile(filepath.Join(host, "etc/containerd/config.toml"), def, 0o644)
	os.MkdirAll(filepath.Join(host, "run/containerd"), 0o755)
	l, err := net.Listen("unix", filepath.Join(host, "run/containerd/containerd.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	install := func() (string, error) {
		out, err := exec.Command(built(t, "../bin/clawos-node"), "install", "--host", host, "--from", "..", "--containerd", "--restart-containerd").CombinedOutput()
		return string(out), err
	}
	out, err := install()
	if err != nil || !strings.Contains(out, "containerd restarted") || !strings.Contains(out, "health check passed") {
		t.Fatalf("clawos-node install: %v\n%s", err, out)
	}
	var rt map[string]any
	if err := json.Unmarshal(mustRead(t, filepath.Join(host, "etc/clawos/runtime.json")), &rt); err != nil || rt["runc"] != "/usr/sbin/runc" {
		t.Errorf("runtime.json names runc %v, want the node's /usr/sbin/runc (%v)", rt["runc"], err)
	}
	if out, err := install(); err != nil || strings.Contains(out, "containerd restarted") || !strings.Contains(out, "health check passed") {
		t.Errorf("a second run: %v\n%s", err, out)
	}
	if log := string(mustRead(t, filepath.Join(host, "systemctl.log"))); log != "restart containerd\n" {
		t.Errorf("systemctl was asked %q, want one restart", log)
	}
	os.Remove(filepath.Join(host, "usr/sbin/runc"))
	if out, err := install(); err == nil || !strings.Contains(out, "the wrapper does not run runc on the node") {
		t.Errorf("without runc: %v\n%s", err, out)
	}
}

// TestPolicyPrewarm: `clawos-policy compile --plan` stores a whitelist's
// entry for each program installed beside it that looks entries up
// (clawos-run and clawos-hook, bin/ here), under the key each computes
// for the same options, so that a podman host's hook is pre-warmed too.
func TestPolicyPrewarm(t *testing.T) {
	bin, err := filepath.Abs("../bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"clawos-run", "clawos-hook", "clawos-policy"} {
		built(t, filepath.Join(bin, p))
	}
	cache := filepath.Join(t.TempDir(), "plans")
	if out, err := exec.Command(filepath.Join(bin, "clawos-policy"), "compile", "--plan", "--cache", cache, "--baseline", "start", probeWhitelist).CombinedOutput(); err != nil {
		t.Fatalf("compile --plan: %v\n%s", err, out)
	}
	raw := mustRead(t, probeWhitelist)
	opts := translate.Options{Baselines: []string{"start"}}
	c, err := plancache.Open(cache, os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	for _, consumer := range plancache.Consumers {
		build, err := plancache.Build(filepath.Join(bin, consumer), filepath.Join(bin, "clawos-policy"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Get(plancache.Key(raw, opts, build)) == nil {
			t.Errorf("no entry for %s", consumer)
		}
	}
	if entries, _ := filepath.Glob(filepath.Join(cache, "*.json")); len(entries) != len(plancache.Consumers) {
		t.Errorf("entries %v, want one per consumer", entries)
	}
}
