// Package schema checks whitelists against the P1.2 JSON Schema, for
// translate.Validator. It is the only package that links a JSON Schema
// library, whose initialisation (the meta-schemas of five drafts, 1.7 MB
// and about 9 ms at every start of a program that links it) the launcher's
// hot path does not pay: clawos-run and clawos-hook use whitelists
// clawos-policy validated (see internal/plancache).
package schema

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	clawerr "github.com/clawos/clawos-security/errors"
	"github.com/clawos/clawos-security/internal/plancache"
	"github.com/clawos/clawos-security/translate"
)

const schemaURL = "https://clawos.org/specs/p1/P1.2-seccomp-whitelist.schema.json"

// Schema is the compiled P1.2 JSON Schema. Compile it once and share it:
// it is safe for concurrent use.
type Schema struct{ s *jsonschema.Schema }

// NewValidator is a translate.Validator with the compiled schema.
func NewValidator() (*translate.Validator, error) {
	s, err := Compile()
	if err != nil {
		return nil, err
	}
	return translate.NewValidator(s), nil
}

// Plan validates raw in this process as `clawos-policy compile --plan`
// does, for key: a plancache.Validator for what links this package anyway
// (clawos-policy, tests).
func Plan(raw []byte, opts translate.Options, key string) (plancache.Result, error) {
	v, err := NewValidator()
	if err != nil {
		return plancache.Result{}, err
	}
	_, rep := v.Validate(raw, opts)
	return plancache.Validated(key, raw, rep), nil
}

// Compile compiles the embedded P1.2 schema (translate.SchemaJSON) with
// format assertions on (so created_at must be an RFC 3339 date-time).
func Compile() (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(translate.SchemaJSON))
	if err != nil {
		return nil, fmt.Errorf("parse embedded P1.2 schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, fmt.Errorf("add embedded P1.2 schema: %w", err)
	}
	s, err := c.Compile(schemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile embedded P1.2 schema: %w", err)
	}
	return &Schema{s}, nil
}

// Check decodes raw as the schema library wants it (numbers kept exact)
// and reports every leaf failure of the schema at its JSON path; an error
// when raw is not JSON.
func (s *Schema) Check(raw []byte) ([]translate.Diagnostic, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	err = s.s.Validate(doc)
	if err == nil {
		return nil, nil
	}
	var out []translate.Diagnostic
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []translate.Diagnostic{{Severity: translate.SeverityError, Code: clawerr.EInternal, Check: "schema",
			Message: fmt.Sprintf("schema validation failed: %v", err)}}, nil
	}
	p := message.NewPrinter(language.English)
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		path := jsonPath(e.InstanceLocation)
		msg := e.ErrorKind.LocalizedString(p)
		out = append(out, translate.Diagnostic{Severity: translate.SeverityError, Code: clawerr.EProto, Path: path,
			Check: "schema", Message: msg, Hint: schemaHint(path, msg)})
	}
	walk(verr)
	return out, nil
}

// jsonPath turns instance tokens ["syscalls","14","name"] into
// "syscalls[14].name".
func jsonPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}

func schemaHint(path, msg string) string {
	switch {
	case strings.HasSuffix(path, "created_at"), strings.HasSuffix(path, "updated_at"):
		return "use an RFC 3339 date-time such as 2026-02-24T00:00:00Z"
	case strings.HasSuffix(path, "whitelist_id"):
		return "use a lower-case UUID such as 550e8400-e29b-41d4-a716-446655440000"
	case strings.Contains(msg, "'conditions'"):
		return "a CONDITIONAL rule needs conditions with a description and a port_restriction or argument_filter"
	}
	return ""
}
