package translate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestPlainKeys(t *testing.T) {
	for _, c := range []struct {
		in   string
		keys []string // nil: not plain (ok false)
	}{
		{`{}`, []string{}},
		{` { } `, []string{}},
		{`{"a":1}`, []string{"a"}},
		{`{"a" : "x\"}" , "b":[1,{"c":[]}], "d":{"e":"\\"}, "f":null, "g":-1.5e3, "h":true}`, []string{"a", "b", "d", "f", "g", "h"}},
		{"{\n\t\"a\":\r\n{}}\n", []string{"a"}},
		{`{"a":1,"a":2}`, []string{"a", "a"}},
		// Escaped, non-ASCII or control characters in a name: the general path.
		{`{"\u0061":1}`, nil},
		{`{"a\"b":1}`, nil},
		{`{"é":1}`, nil},
		{"{\"a\x01\":1}", nil},
		// Not one object.
		{``, nil},
		{`[]`, nil},
		{`{"a":1} {}`, nil},
		{`{"a":1`, nil},
		{`{"a" 1}`, nil},
		{`{"a":}`, nil},
		{`{"a":1,}`, nil},
		{`{"a":"unterminated}`, nil},
		{`{"a":[1,2}`, nil},
		{`{a:1}`, nil},
	} {
		keys, ok := plainKeys([]byte(c.in))
		if ok != (c.keys != nil) {
			t.Errorf("%q: ok %t, want %t", c.in, ok, c.keys != nil)
			continue
		}
		if !ok {
			continue
		}
		got := []string{}
		for _, k := range keys {
			got = append(got, string(k))
		}
		if !reflect.DeepEqual(got, c.keys) {
			t.Errorf("%q: keys %q, want %q", c.in, got, c.keys)
		}
	}
}

// FuzzDecodeKnown checks decodeKnown's single decode against its general
// path (members in a map first) on the model's types: the same value, the
// same unknown members kept, the same error.
//
//	go test ./translate -run '^$' -fuzz FuzzDecodeKnown
func FuzzDecodeKnown(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/validate/*.json")
	seeds = append(seeds, "testdata/upstream-example.json", "../examples/ironclaw.whitelist.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"name":"read","permission":"ALLOW","x":1}`, `{"Name":"read"}`, `{"name":"re\u0061d"}`,
		`{"syscalls":[{"name":"read","permission":"CONDITIONAL","conditions":{"argument_filter":{"arg_index":0,"operator":"masked_eq","value":-1,"mask":-1}}}]}`,
		`{"name":1}`, `{"name":"a","name":"b"}`, `{"name":"a"`, `{"name":"a"} x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, newV := range []func() (any, *map[string]json.RawMessage){
			func() (any, *map[string]json.RawMessage) { w := new(Whitelist); return (*whitelistAlias)(w), &w.Extra },
			func() (any, *map[string]json.RawMessage) { r := new(Rule); return (*ruleAlias)(r), &r.Extra },
			func() (any, *map[string]json.RawMessage) {
				c := new(Conditions)
				return (*conditionsAlias)(c), &c.Extra
			},
			func() (any, *map[string]json.RawMessage) { a := new(ArgumentFilter); return (*argAlias)(a), &a.Extra },
		} {
			fast, fastExtra := newV()
			slow, slowExtra := newV()
			errFast := decodeKnown(b, fast, fastExtra)
			errSlow := decodeViaMap(b, slow, knownNames(reflect.TypeOf(slow).Elem()), slowExtra)
			if (errFast == nil) != (errSlow == nil) || (errFast != nil && errFast.Error() != errSlow.Error()) {
				t.Fatalf("%T of %q: error %v, the general path's %v", fast, b, errFast, errSlow)
			}
			if errFast == nil && !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%T of %q: %+v, the general path's %+v", fast, b, fast, slow)
			}
		}
	})
}

func BenchmarkDecodeWhitelist(b *testing.B) {
	raw, err := os.ReadFile("../examples/ironclaw.whitelist.json")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < b.N; i++ {
		var w Whitelist
		if err := json.Unmarshal(raw, &w); err != nil {
			b.Fatal(err)
		}
	}
}
