package translate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// Permission of a rule.
type Permission string

// The three P1.2 permissions.
const (
	Allow       Permission = "ALLOW"
	Deny        Permission = "DENY"
	Conditional Permission = "CONDITIONAL"
)

// Whitelist is a P1.2 syscall whitelist. Decoding and encoding round-trip the
// JSON exactly: fields this model does not know are kept in Extra and written
// back in sorted order after the known ones.
type Whitelist struct {
	SchemaVersion string    `json:"schema_version"`
	WhitelistID   string    `json:"whitelist_id"`
	CreatedAt     string    `json:"created_at"`
	CreatedBy     string    `json:"created_by"`
	UpdatedAt     string    `json:"updated_at,omitempty"`
	UpdatedBy     string    `json:"updated_by,omitempty"`
	Signature     string    `json:"signature,omitempty"`
	Syscalls      []Rule    `json:"syscalls"`
	Metadata      *Metadata `json:"metadata,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// Rule is one entry of syscalls.
type Rule struct {
	Name             string      `json:"name"`
	Permission       Permission  `json:"permission"`
	Category         string      `json:"category,omitempty"`
	Conditions       *Conditions `json:"conditions,omitempty"`
	Notes            string      `json:"notes,omitempty"`
	VerifiedByStrace *bool       `json:"verified_by_strace,omitempty"`
	TokioRequired    *bool       `json:"tokio_required,omitempty"`
	// DenyErrno is the ClawOS extension "x-clawos-deny-errno": the errno a
	// DENY returns instead of EPERM. It takes a P1.7 code name that has an
	// errno (EAGAIN, EIO, ENOENT, EPERM, EPROTO, ETIMEOUT) or ENOSYS, for
	// "this kernel does not have the call" (libc then falls back, as it does
	// from clone3 to clone). See docs/whitelist-extensions.md.
	DenyErrno string `json:"x-clawos-deny-errno,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// Conditions of a CONDITIONAL rule.
type Conditions struct {
	PortRestriction *PortRestriction `json:"port_restriction,omitempty"`
	ArgumentFilter  *ArgumentFilter  `json:"argument_filter,omitempty"`
	Description     string           `json:"description"`

	Extra map[string]json.RawMessage `json:"-"`
}

// PortRestriction lists the ports a network call may use.
type PortRestriction struct {
	AllowedPorts []int  `json:"allowed_ports"`
	Description  string `json:"description,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// ArgumentFilter compares one syscall argument.
type ArgumentFilter struct {
	ArgIndex int       `json:"arg_index"`
	Operator string    `json:"operator"`
	Value    ArgValue  `json:"value"`
	Mask     *ArgValue `json:"mask,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// Metadata of a whitelist.
type Metadata struct {
	TargetProcess string `json:"target_process,omitempty"`
	Environment   string `json:"environment,omitempty"`
	SecurityLevel string `json:"security_level,omitempty"`
	TokioVersion  string `json:"tokio_version,omitempty"`
	RustVersion   string `json:"rust_version,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// ArgValue is an integer syscall argument value exactly as written. JSON
// integers up to 2^64-1 are kept without loss (float64 would round above
// 2^53); negative values stand for their 64-bit two's complement, so -1 is
// 0xffffffffffffffff.
type ArgValue struct{ lit string }

// NewArgValue returns the ArgValue of v.
func NewArgValue(v uint64) ArgValue { return ArgValue{fmt.Sprint(v)} }

// Uint64 returns the 64-bit register value the argument is compared with.
func (a ArgValue) Uint64() (uint64, error) {
	n, ok := new(big.Int).SetString(a.lit, 10)
	if !ok {
		return 0, fmt.Errorf("%q is not an integer", a.lit)
	}
	if n.Sign() < 0 {
		if n.Cmp(minInt64) < 0 {
			return 0, fmt.Errorf("%s is below -2^63", a.lit)
		}
		return uint64(n.Int64()), nil
	}
	if !n.IsUint64() {
		return 0, fmt.Errorf("%s does not fit in 64 bits", a.lit)
	}
	return n.Uint64(), nil
}

var minInt64 = big.NewInt(-1 << 63)

// String returns the literal.
func (a ArgValue) String() string { return a.lit }

// MarshalJSON writes the literal back unchanged.
func (a ArgValue) MarshalJSON() ([]byte, error) {
	if a.lit == "" {
		return []byte("0"), nil
	}
	return []byte(a.lit), nil
}

// UnmarshalJSON keeps the literal of a JSON number.
func (a *ArgValue) UnmarshalJSON(b []byte) error {
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&n); err != nil {
		return fmt.Errorf("want an integer: %w", err)
	}
	a.lit = n.String()
	return nil
}

// The methods below route every struct through decodeKnown/encodeKnown so
// that unknown fields survive a round trip.

type (
	whitelistAlias  Whitelist
	ruleAlias       Rule
	conditionsAlias Conditions
	portAlias       PortRestriction
	argAlias        ArgumentFilter
	metadataAlias   Metadata
)

func (w *Whitelist) UnmarshalJSON(b []byte) error {
	return decodeKnown(b, (*whitelistAlias)(w), &w.Extra)
}
func (w Whitelist) MarshalJSON() ([]byte, error) {
	return encodeKnown(whitelistAlias(w), w.Extra)
}
func (r *Rule) UnmarshalJSON(b []byte) error { return decodeKnown(b, (*ruleAlias)(r), &r.Extra) }
func (r Rule) MarshalJSON() ([]byte, error)  { return encodeKnown(ruleAlias(r), r.Extra) }
func (c *Conditions) UnmarshalJSON(b []byte) error {
	return decodeKnown(b, (*conditionsAlias)(c), &c.Extra)
}
func (c Conditions) MarshalJSON() ([]byte, error) { return encodeKnown(conditionsAlias(c), c.Extra) }
func (p *PortRestriction) UnmarshalJSON(b []byte) error {
	return decodeKnown(b, (*portAlias)(p), &p.Extra)
}
func (p PortRestriction) MarshalJSON() ([]byte, error) { return encodeKnown(portAlias(p), p.Extra) }
func (a *ArgumentFilter) UnmarshalJSON(b []byte) error {
	return decodeKnown(b, (*argAlias)(a), &a.Extra)
}
func (a ArgumentFilter) MarshalJSON() ([]byte, error) { return encodeKnown(argAlias(a), a.Extra) }
func (m *Metadata) UnmarshalJSON(b []byte) error {
	return decodeKnown(b, (*metadataAlias)(m), &m.Extra)
}
func (m Metadata) MarshalJSON() ([]byte, error) { return encodeKnown(metadataAlias(m), m.Extra) }

// decodeKnown decodes b into v (a pointer to a struct) and stores the members
// v has no field for in extra. encoding/json matches member names without
// regard to case; a member that differs from a known field only in case would
// be read as that field by us but not by the JSON Schema, so it is refused.
// An object whose member names are all known fields, spelled plainly (the
// common case, and every plan cache entry), is decoded once; any other goes
// through a map of its members first.
func decodeKnown(b []byte, v any, extra *map[string]json.RawMessage) error {
	known := knownNames(reflect.TypeOf(v).Elem())
	if keys, ok := plainKeys(b); ok && allKnown(keys, known) {
		if err := json.Unmarshal(b, v); err != nil {
			return err
		}
		*extra = nil
		return nil
	}
	return decodeViaMap(b, v, known, extra)
}

// decodeViaMap is decodeKnown's general path: the members in a map first,
// then the struct.
func decodeViaMap(b []byte, v any, known map[string]bool, extra *map[string]json.RawMessage) error {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	rest := map[string]json.RawMessage{}
	for k, raw := range all {
		if known[k] {
			continue
		}
		for name := range known {
			if strings.EqualFold(name, k) {
				return &FieldCaseError{Field: k, Want: name}
			}
		}
		rest[k] = raw
	}
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	*extra = nil
	if len(rest) > 0 {
		*extra = rest
	}
	return nil
}

// knownNames are the JSON member names of t, one of the model's types,
// computed once per process (read only).
func knownNames(t reflect.Type) map[string]bool {
	if n, ok := modelNames()[t]; ok {
		return n
	}
	return jsonNames(t)
}

// modelNames are the JSON member names of each P1.2 object's type.
var modelNames = sync.OnceValue(func() map[reflect.Type]map[string]bool {
	m := map[reflect.Type]map[string]bool{}
	for _, v := range []any{whitelistAlias{}, ruleAlias{}, conditionsAlias{}, portAlias{}, argAlias{}, metadataAlias{}} {
		t := reflect.TypeOf(v)
		m[t] = jsonNames(t)
	}
	return m
})

func allKnown(keys [][]byte, known map[string]bool) bool {
	for _, k := range keys {
		if !known[string(k)] {
			return false
		}
	}
	return true
}

// plainKeys returns the member names of the JSON object b when each is
// spelled plainly: printable ASCII without escapes. ok is false for
// anything else, a malformed object included (the caller then takes the
// general path, whose decoder reports it).
func plainKeys(b []byte) (keys [][]byte, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return nil, skipSpace(b, i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return nil, false
		}
		start := i + 1
		for i = start; i < len(b) && b[i] != '"'; i++ {
			if c := b[i]; c == '\\' || c < 0x20 || c >= 0x7f {
				return nil, false
			}
		}
		if i >= len(b) {
			return nil, false
		}
		keys = append(keys, b[start:i])
		i = skipSpace(b, i+1)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		if i = skipValue(b, skipSpace(b, i+1)); i < 0 {
			return nil, false
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i = skipSpace(b, i+1)
		case '}':
			return keys, skipSpace(b, i+1) == len(b)
		default:
			return nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the index after the JSON value that starts at b[i], or
// -1. It only finds the value's end (strings with their escapes, nesting);
// json.Unmarshal checks the value itself.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			for i++; i < len(b) && b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if i >= len(b) {
				return -1
			}
			i++
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return -1
			}
			depth--
			i++
		case ',', ':':
			if depth == 0 {
				return -1
			}
			i++
		default:
			if depth == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
				return -1
			}
			i++
		}
		if depth == 0 && i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
		}
		if depth == 0 && i >= len(b) {
			return i
		}
	}
	return -1
}

// FieldCaseError reports a member whose name differs from a P1.2 field only
// in letter case.
type FieldCaseError struct{ Field, Want string }

func (e *FieldCaseError) Error() string {
	return fmt.Sprintf("member %q differs from the P1.2 field %q only in case", e.Field, e.Want)
}

func encodeKnown(v any, extra map[string]json.RawMessage) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || len(extra) == 0 {
		return b, err
	}
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.Write(b[:len(b)-1])
	for i, k := range keys {
		if i > 0 || len(b) > 2 {
			buf.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(extra[k])
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

func jsonNames(t reflect.Type) map[string]bool {
	names := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			names[name] = true
		}
	}
	return names
}
