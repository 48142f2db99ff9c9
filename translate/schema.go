package translate

import (
	"bytes"
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	clawerr "github.com/clawos/clawos-security/errors"
)

// SchemaJSON is the P1.2 JSON Schema, embedded unchanged from the ClawOS
// specification (see p12/SOURCE.md).
//
//go:embed p12/schema.json
var SchemaJSON []byte

const schemaURL = "https://clawos.org/specs/p1/P1.2-seccomp-whitelist.schema.json"

// Schema is the compiled P1.2 JSON Schema. Compile it once with
// CompileSchema and share it: it is safe for concurrent use.
type Schema struct{ s *jsonschema.Schema }

// CompileSchema compiles the embedded P1.2 schema with format assertions on
// (so created_at must be an RFC 3339 date-time).
func CompileSchema() (*Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(SchemaJSON))
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

// decodeForSchema decodes raw as the schema library wants it (numbers kept
// exact).
func decodeForSchema(raw []byte) (any, error) { return jsonschema.UnmarshalJSON(bytes.NewReader(raw)) }

// validate checks a decoded JSON document (from jsonschema.UnmarshalJSON)
// and reports every leaf failure at its JSON path.
func (s *Schema) validate(doc any, r *Report) {
	err := s.s.Validate(doc)
	if err == nil {
		return
	}
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		r.errorf(clawerr.EInternal, "schema", "", "", "schema validation failed: %v", err)
		return
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
		r.errorf(clawerr.EProto, "schema", path, schemaHint(path, msg), "%s", msg)
	}
	walk(verr)
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
