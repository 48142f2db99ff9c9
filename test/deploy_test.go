package test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"cel.dev/cel-go/cel"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/clawos/clawos-security/hook"
	"github.com/clawos/clawos-security/internal/runcargs"
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
		for _, c := range append(ds.Spec.Template.Spec.InitContainers, ds.Spec.Template.Spec.Containers...) {
			// The installer's --prefix and the host directory it writes
			// into must be the same place.
			if i := slices.Index(c.Command, "--prefix"); i >= 0 && i+1 < len(c.Command) {
				prefix := c.Command[i+1]
				mounted := false
				for _, m := range c.VolumeMounts {
					for _, v := range ds.Spec.Template.Spec.Volumes {
						if v.Name == m.Name && v.HostPath != nil && v.HostPath.Path == prefix+"/bin" && m.MountPath == "/host"+prefix+"/bin" {
							mounted = true
						}
					}
				}
				if !mounted {
					t.Errorf("DaemonSet %s: --prefix %s, but no hostPath %s/bin mounted at /host%s/bin", ds.Name, prefix, prefix, prefix)
				}
			}
			if len(c.Command) > 0 && strings.HasPrefix(c.Command[0], "/opt/clawos/deploy/") {
				if _, err := os.Stat(filepath.Join("../deploy", strings.TrimPrefix(c.Command[0], "/opt/clawos/deploy/"))); err != nil {
					t.Errorf("DaemonSet %s runs %s, which deploy/ does not have", ds.Name, c.Command[0])
				}
			}
		}
	}
}

// TestInstallNode runs the node installer script into a scratch root:
// programs, configuration and whitelists land where the runtime wrapper
// looks for them, and the configuration an operator edited is kept.
func TestInstallNode(t *testing.T) {
	for _, p := range []string{"clawos-init", "clawos-hook", "clawos-runc"} {
		built(t, "../bin/"+p)
	}
	host, wl := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(wl, "ironclaw.json"), []byte(`{}`), 0o644)
	run := func() string {
		out, err := exec.Command("sh", "../deploy/install-node.sh", "--host", host, "--from", "..", "--whitelists", wl).CombinedOutput()
		if err != nil {
			t.Fatalf("install-node.sh: %v\n%s", err, out)
		}
		return string(out)
	}
	out := run()
	if !strings.Contains(out, `runtimes.clawos]`) {
		t.Errorf("the installer does not print the containerd snippet:\n%s", out)
	}
	for _, f := range []string{"usr/local/bin/clawos-runc", "usr/local/bin/clawos-hook", "usr/local/bin/clawos-init",
		"etc/clawos/runtime.json", "etc/clawos/whitelists/ironclaw.json"} {
		if _, err := os.Stat(filepath.Join(host, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	cfg := filepath.Join(host, "etc/clawos/runtime.json")
	os.WriteFile(cfg, []byte(`{"apparmor": "off"}`), 0o644)
	run()
	if b, _ := os.ReadFile(cfg); string(b) != `{"apparmor": "off"}` {
		t.Errorf("the installer overwrote the node's configuration: %s", b)
	}
	if _, err := hook.ReadConfig(filepath.Join("../deploy/runtime.json"), false); err != nil {
		t.Errorf("deploy/runtime.json: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(host, "usr/local/bin/*.clawos-tmp.*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}

	// Another prefix (a node whose /usr/local is read-only): the programs
	// land there and the printed snippet names it.
	other := t.TempDir()
	out3, err := exec.Command("sh", "../deploy/install-node.sh", "--host", other, "--prefix", "/opt/clawos", "--from", "..").CombinedOutput()
	if err != nil {
		t.Fatalf("install-node.sh --prefix: %v\n%s", err, out3)
	}
	if _, err := os.Stat(filepath.Join(other, "opt/clawos/bin/clawos-runc")); err != nil {
		t.Errorf("--prefix /opt/clawos: %v", err)
	}
	if !strings.Contains(string(out3), `BinaryName = "/opt/clawos/bin/clawos-runc"`) || strings.Contains(string(out3), "/usr/local/bin") {
		t.Errorf("--prefix /opt/clawos: the printed snippet does not name it:\n%s", out3)
	}
	if out, err := exec.Command("sh", "../deploy/install-node.sh", "--host", other, "--prefix", "opt", "--from", "..").CombinedOutput(); err == nil {
		t.Errorf("a relative --prefix was accepted: %s", out)
	}

	// A ConfigMap volume (entries are symlinks into ..data) installs; an
	// entry leading out of the source directory, or a directory, is
	// refused by name, installs nothing, and fails the installer.
	cm := t.TempDir()
	os.MkdirAll(filepath.Join(cm, "..2026_12_02"), 0o755)
	os.WriteFile(filepath.Join(cm, "..2026_12_02", "agent.json"), []byte(`{"agent": 1}`), 0o644)
	os.Symlink("..2026_12_02", filepath.Join(cm, "..data"))
	os.Symlink("..data/agent.json", filepath.Join(cm, "agent.json"))
	secret := filepath.Join(t.TempDir(), "shadow")
	os.WriteFile(secret, []byte("root:secret"), 0o600)
	os.Symlink(secret, filepath.Join(cm, "evil.json"))
	os.Mkdir(filepath.Join(cm, "dir.json"), 0o755)
	out2, err := exec.Command("sh", "../deploy/install-node.sh", "--host", host, "--from", "..", "--whitelists", cm).CombinedOutput()
	if err == nil {
		t.Errorf("the installer accepted a whitelist leading out of its directory:\n%s", out2)
	}
	for _, want := range []string{"refusing whitelist evil.json", "refusing whitelist dir.json"} {
		if !strings.Contains(string(out2), want) {
			t.Errorf("the installer does not say %q:\n%s", want, out2)
		}
	}
	if b, err := os.ReadFile(filepath.Join(host, "etc/clawos/whitelists/agent.json")); err != nil || string(b) != `{"agent": 1}` {
		t.Errorf("the ConfigMap's whitelist was not installed: %q %v", b, err)
	}
	for _, bad := range []string{"evil.json", "dir.json"} {
		if _, err := os.Lstat(filepath.Join(host, "etc/clawos/whitelists", bad)); err == nil {
			t.Errorf("%s was installed", bad)
		}
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
