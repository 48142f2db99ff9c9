package hook

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/internal/runcargs"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

// TestPrewarm: the entries Prewarm stores under host are the ones the
// node's hook looks up (its lookup finds them without validating), a
// second Prewarm validates nothing, a whitelist the node's options refuse
// is not stored, and a cache others can write to is an error, never a
// silent pre-warm of nothing.
func TestPrewarm(t *testing.T) {
	host := t.TempDir()
	bin := filepath.Join(host, "usr/local/bin")
	os.MkdirAll(bin, 0o755)
	for _, p := range []string{"clawos-hook", "clawos-policy"} {
		os.WriteFile(filepath.Join(bin, p), []byte(p), 0o755)
	}
	wl := filepath.Join(t.TempDir(), "probe.json")
	raw, _ := os.ReadFile("../test/testdata/probe.whitelist.json")
	os.WriteFile(wl, raw, 0o644)
	calls := 0
	validate := func(raw []byte, opts translate.Options, key string) (plancache.Result, error) {
		calls++
		return schema.Plan(raw, opts, key)
	}
	node := Config{}.WithDefaults("/usr/local/bin/clawos-runc") // the node's paths
	if err := Prewarm(node, host, []string{wl}, validate, quiet()); err != nil || calls != 1 {
		t.Fatalf("Prewarm: %v after %d validations", err, calls)
	}
	// The node's hook, its paths as the node sees them (here: under host).
	onNode := node
	onNode.Hook, onNode.Policy, onNode.PlanCache = filepath.Join(host, node.Hook), filepath.Join(host, node.Policy), filepath.Join(host, node.PlanCache)
	onNode.validate = validate
	opts, _ := options(runcargs.Request{}, onNode)
	if _, _, err := onNode.lookup().Whitelist("probe.json", raw, opts, quiet()); err != nil || calls != 1 {
		t.Errorf("the node's hook: %v, %d validations (want the pre-warmed entry, none)", err, calls)
	}
	if err := Prewarm(node, host, []string{wl}, validate, quiet()); err != nil || calls != 1 {
		t.Errorf("a second Prewarm: %v, %d validations", err, calls)
	}
	// Unsigned where signatures are required: refused, nothing stored.
	unsigned := filepath.Join(t.TempDir(), "unsigned.json")
	os.WriteFile(unsigned, []byte(`{"schema_version":"1.0"}`), 0o644)
	strict := node
	strict.RequireSignature = true
	if err := Prewarm(strict, host, []string{unsigned}, validate, quiet()); err != nil {
		t.Errorf("a refused whitelist failed the pre-warm: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(host, node.PlanCache, "*.json")); len(left) != 1 {
		t.Errorf("cache entries %v, want probe.json's only", left)
	}
	os.Chmod(filepath.Join(host, node.PlanCache), 0o777)
	if err := Prewarm(node, host, []string{wl}, validate, quiet()); err == nil {
		t.Error("a plan cache others can write to was used")
	}
	off := node
	off.PlanCache = "off"
	if err := Prewarm(off, host, []string{wl}, validate, quiet()); err != nil {
		t.Errorf("plan_cache off: %v", err)
	}
}
