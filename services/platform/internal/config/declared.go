package config

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"platform/schemas"
)

// SettingsSchema declares every setting once: key, type, default, range,
// pattern or enum, secret flag and which programs read it.
const SettingsSchema = "settings.schema.json"

// declaration is one property of SettingsSchema.
type declaration struct {
	Type             string   `json:"type"`
	Format           string   `json:"x-format"`
	Default          any      `json:"default"`
	Pattern          string   `json:"pattern"`
	Enum             []string `json:"enum"`
	MinLength        *int     `json:"minLength"`
	MaxLength        *int     `json:"maxLength"`
	Minimum          *float64 `json:"minimum"`
	Maximum          *float64 `json:"maximum"`
	ExclusiveMinimum *float64 `json:"exclusiveMinimum"`
	ExclusiveMaximum *float64 `json:"exclusiveMaximum"`
	Secret           bool     `json:"x-secret"`
	Readers          []string `json:"x-readers"`
	Server           string   `json:"x-server"` // the monolith's server that listens on this port

	pattern *regexp.Regexp
}

// declared is SettingsSchema's properties by key. The schema is embedded,
// so an unreadable one is a bug of this build: it panics at start.
var declared = func() map[string]*declaration {
	out, err := readDeclarations()
	if err != nil {
		panic("config: " + err.Error())
	}
	return out
}()

func readDeclarations() (map[string]*declaration, error) {
	b, err := fs.ReadFile(schemas.FS, SettingsSchema)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Properties map[string]*declaration `json:"properties"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", SettingsSchema, err)
	}
	for k, d := range doc.Properties {
		if d.Pattern == "" {
			continue
		}
		if d.pattern, err = regexp.Compile(d.Pattern); err != nil {
			return nil, fmt.Errorf("%s: pattern of %s: %w", SettingsSchema, k, err)
		}
	}
	return doc.Properties, nil
}

// ServerPorts are the port settings the schema marks x-server, by key: the
// server of the monolith that listens on each.
func ServerPorts() map[string]string {
	out := map[string]string{}
	for k, d := range declared {
		if d.Server != "" {
			out[k] = d.Server
		}
	}
	return out
}

// defaultText is the schema's default as the environment would carry it:
// 8080, not 8.08e+03.
func (d *declaration) defaultText() string {
	if d == nil {
		return ""
	}
	switch v := d.Default.(type) {
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// check returns the fix for a raw text value the declaration refuses
// (enum, pattern, length of a string), "" when it passes. Numbers are
// checked once parsed, by their validate tags.
func (d *declaration) check(v string) string {
	if d == nil || d.Type != "string" {
		return ""
	}
	example := fmt.Sprint(d.Default)
	switch {
	case d.Enum != nil && !slices.Contains(d.Enum, v):
		return "use one of " + strings.Join(d.Enum, ", ")
	case d.pattern != nil && !d.pattern.MatchString(v) && d.Format == "duration":
		return fmt.Sprintf("use a positive whole number of ms, s or m, such as %s", example)
	case d.pattern != nil && !d.pattern.MatchString(v) && example == "":
		return "use a value matching " + d.Pattern
	case d.pattern != nil && !d.pattern.MatchString(v):
		return fmt.Sprintf("use a value matching %s, such as %s", d.Pattern, example)
	case d.MinLength != nil && utf8.RuneCountInString(v) < *d.MinLength:
		return fmt.Sprintf("use at least %d characters", *d.MinLength)
	case d.MaxLength != nil && utf8.RuneCountInString(v) > *d.MaxLength:
		return fmt.Sprintf("use at most %d characters", *d.MaxLength)
	}
	return ""
}
