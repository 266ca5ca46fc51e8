// Package contracts validates payloads against the JSON Schemas in the
// repository's schemas/ directory (embedded through the platform/schemas
// module, so Go and Python read the very same files).
package contracts

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"platform/schemas"
)

// Schema file names used by the services.
const (
	TelemetryBatch   = "telemetry-batch.schema.json"
	TelemetryReading = "telemetry-reading.schema.json"
	TelemetryEvent   = "telemetry-event.schema.json"
	MQTTTelemetry    = "mqtt-telemetry.schema.json"
	DeadLetter       = "dlq-message.schema.json"
	CommandRequest   = "command-request.schema.json"
	CommandMessage   = "command-message.schema.json"
	CommandAck       = "command-ack.schema.json"
	IngestResponse   = "ingest-response.schema.json"
	ErrorBody        = "error.schema.json"
	Command          = "command.schema.json"
	DeviceList       = "device-list.schema.json"
	DeviceLatest     = "device-latest.schema.json"
	ReadingsPage     = "readings-page.schema.json"
	EventsPage       = "events-page.schema.json"
	Health           = "health.schema.json"
	ScoreRequest     = "score-request.schema.json"
	ScoreResponse    = "score-response.schema.json"
	AnomalyEvent     = "anomaly-event.schema.json"
	AnomalyList      = "anomaly-list.schema.json"
	baseURL          = "https://platform.invalid/schemas/"
	maxViolations    = 100
	violationsLimit  = "further violations omitted"
)

// Violation is one schema violation: where (JSON pointer into the
// instance) and what.
type Violation struct {
	Pointer string
	Keyword string // the failing keyword, e.g. "minItems"
	Message string
}

// MalformedError reports a payload that is not JSON at all.
type MalformedError struct{ Err error }

func (e *MalformedError) Error() string { return "malformed JSON: " + e.Err.Error() }

// InvalidError reports a JSON payload that violates its schema.
type InvalidError struct {
	Schema     string
	Violations []Violation
}

func (e *InvalidError) Error() string {
	parts := make([]string, 0, len(e.Violations))
	for _, v := range e.Violations {
		parts = append(parts, v.Pointer+": "+v.Message)
	}
	return fmt.Sprintf("does not match %s: %s", e.Schema, strings.Join(parts, "; "))
}

// Validator holds every compiled schema.
type Validator struct {
	schemas map[string]*jsonschema.Schema
}

var printer = message.NewPrinter(language.English)

// New compiles every *.schema.json of fsys (schemas.FS when nil).
func New(fsys fs.FS) (*Validator, error) {
	if fsys == nil {
		fsys = schemas.FS
	}
	names, err := fs.Glob(fsys, "*.schema.json")
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", n, err)
		}
		if err := c.AddResource(baseURL+n, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", n, err)
		}
	}
	v := &Validator{schemas: make(map[string]*jsonschema.Schema, len(names))}
	for _, n := range names {
		s, err := c.Compile(baseURL + n)
		if err != nil {
			return nil, fmt.Errorf("compile %s: %w", n, err)
		}
		v.schemas[n] = s
	}
	return v, nil
}

var defaultValidator = sync.OnceValues(func() (*Validator, error) { return New(nil) })

// Default is the validator over the embedded repository schemas. It panics
// if they do not compile (a build defect, covered by tests).
func Default() *Validator {
	v, err := defaultValidator()
	if err != nil {
		panic(err)
	}
	return v
}

// Names lists the schema files known to the validator.
func (v *Validator) Names() []string {
	out := make([]string, 0, len(v.schemas))
	for n := range v.schemas {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Validate checks data against the named schema file. It returns a
// *MalformedError or an *InvalidError, or nil.
func (v *Validator) Validate(schema string, data []byte) error {
	s, ok := v.schemas[schema]
	if !ok {
		return fmt.Errorf("unknown schema %q", schema)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &MalformedError{Err: err}
	}
	return v.validateValue(schema, s, inst)
}

// Decode parses data (numbers as json.Number), validates it against the
// named schema and returns the decoded value, so callers need not parse twice.
func (v *Validator) Decode(schema string, data []byte) (any, error) {
	s, ok := v.schemas[schema]
	if !ok {
		return nil, fmt.Errorf("unknown schema %q", schema)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return nil, &MalformedError{Err: err}
	}
	if err := v.validateValue(schema, s, inst); err != nil {
		return nil, err
	}
	return inst, nil
}

func (v *Validator) validateValue(name string, s *jsonschema.Schema, inst any) error {
	err := s.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	var out []Violation
	collect(ve, &out)
	if len(out) == 0 {
		out = append(out, Violation{Pointer: "", Message: ve.Error()})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Pointer < out[j].Pointer })
	if len(out) > maxViolations {
		out = append(out[:maxViolations], Violation{Message: violationsLimit})
	}
	return &InvalidError{Schema: name, Violations: out}
}

func collect(e *jsonschema.ValidationError, out *[]Violation) {
	if len(e.Causes) == 0 {
		kw := ""
		if p := e.ErrorKind.KeywordPath(); len(p) > 0 {
			kw = p[len(p)-1]
		}
		*out = append(*out, Violation{Pointer: pointer(e.InstanceLocation), Keyword: kw, Message: e.ErrorKind.LocalizedString(printer)})
		return
	}
	for _, c := range e.Causes {
		collect(c, out)
	}
}

func pointer(loc []string) string {
	if len(loc) == 0 {
		return ""
	}
	var b strings.Builder
	for _, t := range loc {
		b.WriteByte('/')
		t = strings.ReplaceAll(t, "~", "~0")
		b.WriteString(strings.ReplaceAll(t, "/", "~1"))
	}
	return b.String()
}
