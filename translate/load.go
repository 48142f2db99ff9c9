package translate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	clawerr "github.com/clawos/clawos-security/errors"
)

// MaxWhitelistSize is the largest whitelist accepted, in bytes. A whitelist
// naming every syscall of an architecture with long notes is about 150 KiB;
// 8 MiB leaves room for generated whitelists and refuses runaway input
// before it is parsed.
const MaxWhitelistSize = 8 << 20

// ReadFile reads a whitelist file ("-" reads stdin from the given reader),
// refusing files over MaxWhitelistSize.
func ReadFile(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		return readLimited(stdin, "standard input")
	}
	f, err := os.Open(path)
	if err != nil {
		code := clawerr.EIO
		if errors.Is(err, os.ErrNotExist) {
			code = clawerr.ENoEnt
		}
		return nil, clawerr.Wrap(code, err, "read whitelist")
	}
	defer f.Close()
	return readLimited(f, path)
}

func readLimited(r io.Reader, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxWhitelistSize+1))
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EIO, err, "read whitelist "+name)
	}
	if len(b) > MaxWhitelistSize {
		return nil, &clawerr.Error{Code: clawerr.EProto, Message: fmt.Sprintf("whitelist %s is larger than %d bytes", name, MaxWhitelistSize),
			Hint: "a P1.2 whitelist of every syscall is about 150 KiB; this input is not a whitelist"}
	}
	return b, nil
}

// syntaxCheck reports malformed JSON with line and column, and members that
// appear twice in one object (decoders disagree on which one wins, so a
// duplicate could make the schema and the translator see different rules).
func syntaxCheck(raw []byte, r *Report) bool {
	if !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		var se *json.SyntaxError
		msg := "malformed JSON"
		if errors.As(err, &se) {
			line, col := lineCol(raw, se.Offset)
			msg = fmt.Sprintf("malformed JSON at line %d, column %d: %v", line, col, se)
		} else if err != nil {
			msg = "malformed JSON: " + err.Error()
		}
		r.errorf(clawerr.EProto, "json", "", "check the file is the whitelist and is complete", "%s", msg)
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	ok := true
	var walk func(path string) error
	walk = func(path string) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, isDelim := tok.(json.Delim)
		if !isDelim {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k := kt.(string)
				child := joinPath(path, k)
				if seen[k] {
					r.errorf(clawerr.EProto, "duplicate-member", child, "remove one of them", "member %q appears more than once in this object", k)
					ok = false
				}
				if want, bad := caseVariant(k); bad {
					r.errorf(clawerr.EProto, "member-case", child, "rename it to "+want,
						"member %q differs from the P1.2 member %q only in case; decoders disagree on such members, so it is refused", k, want)
					ok = false
				}
				seen[k] = true
				if err := walk(child); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if err := walk(path + "[" + strconv.Itoa(i) + "]"); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // closing delimiter
		return err
	}
	if err := walk(""); err != nil {
		r.errorf(clawerr.EProto, "json", "", "", "malformed JSON: %v", err)
		return false
	}
	return ok
}

// p12Names are the member names of every P1.2 object.
var p12Names = sync.OnceValue(func() []string {
	var out []string
	for _, names := range modelNames() {
		for n := range names {
			out = append(out, n)
		}
	}
	return out
})

// caseVariant reports whether k differs from a P1.2 member name only in
// letter case, and which name.
func caseVariant(k string) (string, bool) {
	for _, n := range p12Names() {
		if k != n && strings.EqualFold(k, n) {
			return n, true
		}
	}
	return "", false
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func lineCol(b []byte, off int64) (int, int) {
	if off > int64(len(b)) {
		off = int64(len(b))
	}
	before := b[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - strings.LastIndexByte(string(before), '\n')
	return line, col
}
