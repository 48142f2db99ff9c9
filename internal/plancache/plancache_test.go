package plancache_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/translate"
	"github.com/clawos/clawos-security/translate/schema"
)

func validated(t *testing.T, path string, opts translate.Options, build string) (*translate.Whitelist, plancache.Result) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := schema.NewValidator()
	if err != nil {
		t.Fatal(err)
	}
	wl, rep := v.Validate(raw, opts)
	return wl, plancache.Validated(plancache.Key(raw, opts, build), raw, rep)
}

// TestEntries: a valid whitelist's entry decodes to what validation gave,
// round-trips through the cache, and every damaged or foreign entry is a
// miss; an invalid whitelist has no entry and refuses with its errors.
func TestEntries(t *testing.T) {
	wl, res := validated(t, "../../examples/ironclaw.whitelist.json", translate.Options{}, "build-1")
	if res.Err() != nil || res.Entry == nil {
		t.Fatalf("the reference whitelist: %v", res.Err())
	}
	got, err := res.Entry.Decode()
	if err != nil || !reflect.DeepEqual(got, wl) {
		t.Fatalf("the entry decodes to another whitelist than validation gave (%v)", err)
	}
	c, err := plancache.Open(filepath.Join(t.TempDir(), "plans"), os.Geteuid())
	if err != nil {
		t.Fatal(err)
	}
	if c.Get(res.Entry.Key) != nil {
		t.Fatal("a hit in an empty cache")
	}
	if err := c.Put(res.Entry); err != nil {
		t.Fatal(err)
	}
	back := c.Get(res.Entry.Key)
	if back == nil {
		t.Fatal("a miss after Put")
	}
	if wl2, err := back.Decode(); err != nil || !reflect.DeepEqual(wl2, wl) {
		t.Fatalf("the cached entry decodes to another whitelist (%v)", err)
	}
	path := filepath.Join(c.Dir(), res.Entry.Key+".json")
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("entry file: %v %v, want 0600", fi, err)
	}
	good, _ := os.ReadFile(path)
	var stored map[string]json.RawMessage
	json.Unmarshal(good, &stored)
	for name, damage := range map[string]func() []byte{
		"a flipped byte": func() []byte { return []byte(strings.Replace(string(good), "ALLOW", "ALLOX", 1)) },
		"another digest": func() []byte {
			return []byte(strings.Replace(string(good), string(stored["digest"]), `"`+strings.Repeat("0", 64)+`"`, 1))
		},
		"not JSON": func() []byte { return []byte("{") },
	} {
		os.WriteFile(path, damage(), 0o600)
		if c.Get(res.Entry.Key) != nil {
			t.Errorf("%s: the entry is used", name)
		}
	}
	// An entry of another key or format, even with a correct digest.
	for name, e := range map[string]plancache.Entry{
		"another key":    {Format: plancache.Format, Key: strings.Repeat("a", 64), Whitelist: res.Entry.Whitelist},
		"another format": {Format: plancache.Format + 1, Key: res.Entry.Key, Whitelist: res.Entry.Whitelist},
	} {
		os.Remove(path)
		body, _ := json.Marshal(e)
		if e.Format == plancache.Format {
			c.Put(&e)
			os.Rename(filepath.Join(c.Dir(), e.Key+".json"), path)
		} else {
			os.WriteFile(path, wrap(body), 0o600)
		}
		if c.Get(res.Entry.Key) != nil {
			t.Errorf("%s: the entry is used", name)
		}
	}
	// A symlink or a group-writable file is not read.
	os.Remove(path)
	c.Put(res.Entry)
	os.Chmod(path, 0o620)
	if c.Get(res.Entry.Key) != nil {
		t.Error("a group-writable entry is used")
	}
	os.Rename(path, path+".real")
	os.Chmod(path+".real", 0o600)
	os.Symlink(path+".real", path)
	if c.Get(res.Entry.Key) != nil {
		t.Error("an entry through a symlink is used")
	}

	_, bad := validated(t, "../../translate/testdata/validate/unsigned-production.json", translate.Options{}, "build-1")
	if bad.Entry != nil || bad.Err() == nil {
		t.Error("an invalid whitelist has an entry")
	}
}

func wrap(body []byte) []byte {
	b, _ := json.Marshal(map[string]any{"digest": sha(body), "entry": json.RawMessage(body)})
	return b
}

// TestKeys: the key changes with the bytes, every option validation
// depends on and the programs' identity, and not with the exec address.
func TestKeys(t *testing.T) {
	raw := []byte(`{"a":1}`)
	base := plancache.Key(raw, translate.Options{}, "b")
	for name, k := range map[string]string{
		"bytes":     plancache.Key([]byte(`{"a":2}`), translate.Options{}, "b"),
		"signature": plancache.Key(raw, translate.Options{RequireSignature: true}, "b"),
		"baselines": plancache.Key(raw, translate.Options{Baselines: []string{"start"}}, "b"),
		"arch":      plancache.Key(raw, translate.Options{Arch: otherArch()}, "b"),
		"reaper":    plancache.Key(raw, translate.Options{InitReaper: true}, "b"),
		"build":     plancache.Key(raw, translate.Options{}, "c"),
	} {
		if k == base {
			t.Errorf("the key does not change with the %s", name)
		}
	}
	if plancache.Key(raw, translate.Options{ExecStart: 0x2000_0000_0000}, "b") != base {
		t.Error("the key changes with the per-run exec address")
	}
	// clawos-policy names the native architecture, clawos-run and the
	// hook leave it empty: the same key (its pre-warm missed before).
	if plancache.Key(raw, translate.Options{Arch: translate.NativeArch()}, "b") != base {
		t.Error("the native architecture named and left empty give different keys")
	}
}

// otherArch is a supported architecture that is not this machine's.
func otherArch() translate.Arch {
	for _, a := range translate.KnownArches() {
		if a != translate.NativeArch() {
			return a
		}
	}
	return "none"
}

// TestOpen refuses a cache others can write to, or in a directory they
// can; a sticky world-writable parent (/tmp) is fine.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	os.Chmod(open, 0o777)
	if _, err := plancache.Open(filepath.Join(open, "plans"), os.Geteuid()); err == nil {
		t.Error("a cache under a world-writable directory was opened")
	}
	if _, err := plancache.Open(open, os.Geteuid()); err == nil {
		t.Error("a world-writable cache was opened")
	}
	sticky := filepath.Join(dir, "sticky")
	os.Mkdir(sticky, 0o777)
	os.Chmod(sticky, 0o777|os.ModeSticky)
	if _, err := plancache.Open(filepath.Join(sticky, "plans"), os.Geteuid()); err != nil {
		t.Errorf("a cache under a sticky directory: %v", err)
	}
	if _, err := plancache.Open(filepath.Join(dir, "theirs"), os.Geteuid()+1); err == nil {
		t.Error("a cache of another uid's was opened")
	}
	if _, err := plancache.Open("relative", os.Geteuid()); err == nil {
		t.Error("a relative cache directory was opened")
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestLookupSignature: an invalid whitelist is refused with its signature
// state for the audit record, from validation when it got that far, else
// read from the document (a whitelist that did not decode), "" for what
// is not a JSON object.
func TestLookupSignature(t *testing.T) {
	for _, c := range []struct {
		name string
		raw  string
		res  plancache.Result
		want translate.SignatureState
	}{
		{"validation's state", `{"signature": "x"}`, plancache.Result{Invalid: []translate.Diagnostic{{Message: "bad"}}, Signature: translate.SignatureMismatch}, translate.SignatureMismatch},
		{"undecodable, unsigned", `{"syscalls": "all"}`, plancache.Result{Invalid: []translate.Diagnostic{{Message: "bad"}}}, translate.SignatureMissing},
		{"undecodable, placeholder", `{"syscalls": "all", "signature": "TODO"}`, plancache.Result{Invalid: []translate.Diagnostic{{Message: "bad"}}}, translate.SignaturePlaceholder},
		{"not JSON", `syscalls: all`, plancache.Result{Invalid: []translate.Diagnostic{{Message: "bad"}}}, ""},
	} {
		l := plancache.Lookup{Validate: func([]byte, translate.Options, string) (plancache.Result, error) { return c.res, nil }}
		wl, sig, err := l.Whitelist(c.name, []byte(c.raw), translate.Options{}, logrus.New())
		if wl != nil || err == nil || sig != c.want {
			t.Errorf("%s: %v, %q, %v; want a refusal with signature %q", c.name, wl, sig, err, c.want)
		}
	}
}

// TestIdentities: an identity per consumer installed beside clawos-policy,
// none without one.
func TestIdentities(t *testing.T) {
	dir := t.TempDir()
	if ids := plancache.Identities(dir); len(ids) != 0 {
		t.Fatalf("an empty directory: %v", ids)
	}
	os.WriteFile(filepath.Join(dir, "clawos-policy"), []byte("policy"), 0o755)
	os.WriteFile(filepath.Join(dir, "clawos-run"), []byte("run"), 0o755)
	one := plancache.Identities(dir)
	if run, _ := plancache.Build(filepath.Join(dir, "clawos-run"), filepath.Join(dir, "clawos-policy")); len(one) != 1 || one[0] != run {
		t.Fatalf("clawos-run beside: %v", one)
	}
	os.WriteFile(filepath.Join(dir, "clawos-hook"), []byte("hook"), 0o755)
	two := plancache.Identities(dir)
	if hook, _ := plancache.Build(filepath.Join(dir, "clawos-hook"), filepath.Join(dir, "clawos-policy")); len(two) != 2 || two[1] != hook || two[0] == two[1] {
		t.Errorf("clawos-run and clawos-hook beside: %v", two)
	}
}
