package translate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"sync"

	"github.com/gowebpki/jcs"

	clawerr "github.com/clawos/clawos-security/errors"
)

// SignatureState says what a whitelist's signature field holds.
type SignatureState string

// Signature states.
const (
	SignatureValid       SignatureState = "valid"
	SignatureMismatch    SignatureState = "mismatch"
	SignatureMissing     SignatureState = "missing"
	SignaturePlaceholder SignatureState = "placeholder" // present but not 64 lower-case hex digits
)

var sigPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{64}$`) })

// Canonical returns the canonical form of a whitelist that its signature
// covers: the document without its top-level "signature" member, serialised
// by RFC 8785 (JSON Canonicalization Scheme: members sorted by UTF-16 code
// units, no insignificant whitespace, ECMAScript number formatting). RFC 8785
// numbers are IEEE-754 doubles, so a number that a double cannot hold exactly
// (an integer beyond 2^53, or a decimal with too many digits) is refused: two
// different documents must never share a signature. See docs/signature.md.
func Canonical(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, clawerr.Wrap(clawerr.EProto, err, "canonicalize: not a JSON object")
	}
	delete(doc, "signature")
	if err := exactNumbers(doc, ""); err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "canonicalize")
	}
	out, err := jcs.Transform(b)
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EProto, err, "canonicalize (RFC 8785)")
	}
	return out, nil
}

func exactNumbers(v any, path string) error {
	switch t := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(t) {
			if err := exactNumbers(t[k], joinPath(path, k)); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range t {
			if err := exactNumbers(e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return err
			}
		}
	case json.Number:
		exact, _, err := big.ParseFloat(t.String(), 10, 2048, big.ToNearestEven)
		if err != nil {
			return &clawerr.Error{Code: clawerr.EProto, Path: path, Message: "not a number", Err: err}
		}
		f, _ := exact.Float64()
		if new(big.Float).SetPrec(2048).SetFloat64(f).Cmp(exact) != 0 {
			return &clawerr.Error{Code: clawerr.EProto, Path: path,
				Message: fmt.Sprintf("%s cannot be signed: RFC 8785 represents numbers as IEEE-754 doubles, which cannot hold it exactly", t),
				Hint:    "integers up to 2^53 can be signed; compare larger values with masked_eq on the bits that matter"}
		}
	}
	return nil
}

// Digest is the hex SHA-256 of Canonical(raw): the value of a correct
// signature.
func Digest(raw []byte) (string, error) {
	c, err := Canonical(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// VerifySignature returns the state of raw's signature. The error is
// non-nil only when the digest cannot be computed.
func VerifySignature(raw []byte, sig string) (SignatureState, error) {
	switch {
	case sig == "":
		return SignatureMissing, nil
	case !sigPattern().MatchString(sig):
		return SignaturePlaceholder, nil
	}
	d, err := Digest(raw)
	if err != nil {
		return "", err
	}
	if d != sig {
		return SignatureMismatch, nil
	}
	return SignatureValid, nil
}

// SignatureOf is the state of the signature of raw read as a JSON object,
// for a whitelist that validation refused before its signature check ran
// (it could not be decoded as a whitelist): audit records name it. "" if
// raw is not a JSON object.
func SignatureOf(raw []byte) SignatureState {
	var sig struct {
		Signature string `json:"signature"`
	}
	if json.Unmarshal(raw, &sig) != nil {
		return ""
	}
	state, _ := VerifySignature(raw, sig.Signature)
	return state
}

// Sign returns the whitelist with its signature set to the digest of its
// content, encoded as this package encodes whitelists (two-space indent,
// P1.2 member order, unknown members kept). Sign does not validate: call
// Validator.Validate first.
func Sign(raw []byte) ([]byte, error) {
	var wl Whitelist
	if err := json.Unmarshal(raw, &wl); err != nil {
		return nil, clawerr.Wrap(clawerr.EProto, err, "sign: decode whitelist")
	}
	d, err := Digest(raw)
	if err != nil {
		return nil, err
	}
	wl.Signature = d
	return Encode(&wl)
}

// Encode writes a whitelist as indented JSON with a final newline.
func Encode(wl *Whitelist) ([]byte, error) {
	b, err := json.MarshalIndent(wl, "", "  ")
	if err != nil {
		return nil, clawerr.Wrap(clawerr.EInternal, err, "encode whitelist")
	}
	return append(b, '\n'), nil
}

func checkSignature(in *input, r *Report) {
	state, err := VerifySignature(in.raw, in.wl.Signature)
	r.Signature = state
	if err != nil {
		d := Diagnostic{Severity: SeverityError, Code: clawerr.CodeOf(err), Check: "signature", Message: err.Error()}
		if e, ok := err.(*clawerr.Error); ok {
			d.Path, d.Message, d.Hint = e.Path, e.Message, e.Hint
		}
		r.add(d)
		return
	}
	production := in.wl.Metadata != nil && in.wl.Metadata.Environment == "production"
	required := production || in.opts.RequireSignature
	why := "signatures are required by the caller"
	if production {
		why = "metadata.environment is production"
	}
	switch state {
	case SignatureMismatch:
		r.errorf(clawerr.EPerm, "signature", "signature",
			"the whitelist changed after it was signed; re-sign it with clawos-policy sign only if the change is approved",
			"signature does not match the content (SHA-256 of the RFC 8785 canonical form without signature)")
	case SignatureMissing, SignaturePlaceholder:
		msg := "the whitelist is not signed"
		if state == SignaturePlaceholder {
			msg = fmt.Sprintf("signature %q is a placeholder, not 64 lower-case hex digits", truncate(in.wl.Signature, 40))
		}
		hint := "sign it with clawos-policy sign"
		if required {
			r.errorf(clawerr.EPerm, "signature", "signature", hint, "%s, and %s", msg, why)
		} else {
			r.warnf(clawerr.EPerm, "signature", "signature", hint, "%s", msg)
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
