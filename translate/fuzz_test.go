package translate_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/clawos/clawos-security/seccomp"
	"github.com/clawos/clawos-security/translate"
)

// FuzzValidateTranslate feeds arbitrary bytes through parse, validation,
// canonicalisation, translation and compilation. No input may panic or
// hang; a whitelist the validator accepts must translate deterministically
// and compile, or be refused with an error.
//
//	go test ./translate -run '^$' -fuzz FuzzValidateTranslate -fuzztime 30s
func FuzzValidateTranslate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/validate/*.json")
	seeds = append(seeds, "testdata/upstream-example.json", "../examples/ironclaw.whitelist.json")
	for _, s := range seeds {
		f.Add(readFile(f, s))
	}
	f.Add([]byte(`{"syscalls":[{"name":"read","permission":"CONDITIONAL","conditions":{"argument_filter":{"arg_index":0,"operator":"masked_eq","value":-1,"mask":-1},"description":""}}]}`))
	v := validator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = translate.Canonical(raw)
		wl, rep := v.Validate(raw, translate.Options{Arch: translate.ArchX8664})
		if wl == nil || rep.Err() != nil {
			return
		}
		opts := translate.Options{Arch: translate.ArchX8664, Baselines: []string{"start"}}
		p1, err := translate.Translate(wl, opts)
		if err != nil {
			return
		}
		p2, err := translate.Translate(wl, opts)
		if err != nil {
			t.Fatalf("second translation failed: %v", err)
		}
		a, err1 := p1.SeccompJSON()
		b, err2 := p2.SeccompJSON()
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
			t.Fatalf("translation is not deterministic: %v %v", err1, err2)
		}
		if prog, err := seccomp.Compile(p1.Seccomp); err == nil && prog.Len() > seccomp.MaxInstructions {
			t.Fatalf("compiled %d instructions past the limit", prog.Len())
		}
	})
}
