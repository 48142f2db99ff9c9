package translate_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	for _, p := range pathological() {
		f.Add(p)
	}
	v := validator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		// A hang is a failure the fuzzer can save: no input of at most
		// MaxWhitelistSize may take seconds.
		start := time.Now()
		defer func() {
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("input of %d bytes took %v", len(raw), d)
			}
		}()
		_, _ = translate.Canonical(raw)
		wl, rep := v.Validate(raw, translate.Options{Arch: translate.ArchX8664})
		if wl == nil || rep.Err() != nil {
			return
		}
		opts := translate.Options{Arch: translate.ArchX8664, Baselines: []string{"start"}}
		// Properties: a whitelist that validates translates, deterministically,
		// and compiles (or is refused for the kernel's instruction limit,
		// with its own error); and the compiled program gives every listed
		// call the verdict its rule says, so that no input widens a DENY or
		// turns an ALLOW into a kill.
		p1, err := translate.Translate(wl, opts)
		if err != nil {
			t.Fatalf("a whitelist that validates does not translate: %v", err)
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
		prog, err := seccomp.Compile(p1.Seccomp)
		if err != nil {
			if strings.Contains(err.Error(), "BPF instructions; the kernel accepts at most") {
				return
			}
			t.Fatalf("a translated whitelist does not compile: %v", err)
		}
		ev, err := seccomp.NewEvaluator(prog)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range wl.Syscalls {
			nr, ok := translate.ArchX8664.SyscallNumber(r.Name)
			if !ok {
				continue
			}
			v := ev.Evaluate(seccomp.Input{Arch: translate.ArchX8664.Audit(), Nr: int32(nr)})
			switch r.Permission {
			case translate.Allow:
				if v.Action() != seccomp.RetAllow {
					t.Fatalf("%s is ALLOW, the program says %v", r.Name, v)
				}
			case translate.Deny:
				want := uint16(1)
				if r.DenyErrno == "ENOSYS" {
					want = 38
				}
				if v.Action() != seccomp.RetErrno || (r.DenyErrno == "" || r.DenyErrno == "ENOSYS") && v.Data() != want {
					t.Fatalf("%s is DENY %s, the program says %v", r.Name, r.DenyErrno, v)
				}
			case translate.Conditional:
				// With zero arguments the condition holds or the EPERM
				// branch answers: never a kill, never another errno.
				if a := v.Action(); a != seccomp.RetAllow && (a != seccomp.RetErrno || v.Data() != 1) {
					t.Fatalf("%s is CONDITIONAL, with zero arguments the program says %v", r.Name, v)
				}
			}
		}
	})
}

// pathological are inputs that once were slow or could be: a megabyte
// syscall name (edit distance against every name), huge exponents and long
// digit strings (big-number parsing in canonicalisation and the schema).
func pathological() [][]byte {
	hdr := `"schema_version":"1.0.0","whitelist_id":"6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b","created_at":"2026-11-28T00:00:00Z","created_by":"Security Agent"`
	sig := `"signature":"` + strings.Repeat("a", 64) + `"`
	return [][]byte{
		[]byte(`{` + hdr + `,"syscalls":[{"name":"` + strings.Repeat("a", 1<<20) + `","permission":"ALLOW"}]}`),
		[]byte(`{` + hdr + `,"syscalls":[{"name":"read","permission":"CONDITIONAL","conditions":{"description":"x","argument_filter":{"arg_index":1e999999999,"operator":"eq","value":0}}}]}`),
		[]byte(`{` + hdr + `,"syscalls":[{"name":"read","permission":"CONDITIONAL","conditions":{"description":"x","argument_filter":{"arg_index":1,"operator":"eq","value":1e999999999}}}]}`),
		[]byte(`{` + hdr + `,"x":1e999999999,` + sig + `,"syscalls":[{"name":"read","permission":"ALLOW"}]}`),
		[]byte(`{` + hdr + `,"syscalls":[{"name":"connect","permission":"CONDITIONAL","conditions":{"description":"x","port_restriction":{"allowed_ports":[1e-999999999]}}}]}`),
		[]byte(`{` + hdr + `,"x":0.` + strings.Repeat("0", 1<<20) + `1,` + sig + `,"syscalls":[{"name":"read","permission":"ALLOW"}]}`),
		[]byte(strings.Repeat("[", 100000) + strings.Repeat("]", 100000)),
	}
}

// BenchmarkValidatePathological measures validation of each pathological
// input.
func BenchmarkValidatePathological(b *testing.B) {
	v := validator(b)
	for i, p := range pathological() {
		b.Run(fmt.Sprint(i), func(b *testing.B) {
			for n := 0; n < b.N; n++ {
				v.Validate(p, translate.Options{Arch: translate.ArchX8664})
			}
		})
	}
}
