package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The monolith's struct tags are a reading of settings.schema.json, not a
// second declaration: every key the schema gives to "platform" is a Config
// field and the reverse, with the same range, secret flag and a Go type
// that holds the schema's type; the default is the schema's alone.
func TestConfigFollowsSettingsSchema(t *testing.T) {
	byKey := map[string]reflect.StructField{}
	for _, f := range fields() {
		byKey[key(f)] = f
	}
	for k, d := range declared {
		if _, ok := byKey[k]; slices.Contains(d.Readers, "platform") && !ok {
			t.Errorf("%s: %s lists platform among its readers, but no Config field has env:%q", k, SettingsSchema, k)
		}
	}
	for k, f := range byKey {
		d, ok := declared[k]
		switch {
		case !ok:
			t.Errorf("%s: Config.%s reads it, but %s does not declare it", k, f.Name, SettingsSchema)
			continue
		case !slices.Contains(d.Readers, "platform"):
			t.Errorf("%s: Config.%s reads it, but %s's x-readers %v lack platform", k, f.Name, SettingsSchema, d.Readers)
		}
		for _, problem := range drift(f, d) {
			t.Errorf("%s: Config.%s %s", k, f.Name, problem)
		}
	}
}

// drift lists how a field's tags and type differ from its declaration.
func drift(f reflect.StructField, d *declaration) []string {
	var out []string
	if fit := typeFits(f.Type, d); fit != "" {
		out = append(out, fit)
	}
	if def, ok := f.Tag.Lookup("envDefault"); ok {
		out = append(out, fmt.Sprintf("has envDefault %q: a second copy of the schema's default %v, which Load reads", def, d.Default))
	}
	if d.Default == nil {
		out = append(out, "takes its default from the schema, which declares none")
	}
	r := ranges(f)
	for tag, bound := range map[string]*float64{"min": d.Minimum, "max": d.Maximum, "gt": d.ExclusiveMinimum, "lt": d.ExclusiveMaximum} {
		param, tagged := r[tag]
		switch {
		case bound == nil && tagged:
			out = append(out, fmt.Sprintf("has validate %s=%s; the schema declares no such bound", tag, param))
		case bound != nil && !tagged:
			out = append(out, fmt.Sprintf("has no validate %s; the schema's bound is %v", tag, *bound))
		case bound != nil && param != strconv.FormatFloat(*bound, 'f', -1, 64):
			out = append(out, fmt.Sprintf("has validate %s=%s; the schema's bound is %v", tag, param, *bound))
		}
	}
	if secret(f) != d.Secret {
		out = append(out, fmt.Sprintf("has secret tag %v; the schema's x-secret is %v", secret(f), d.Secret))
	}
	return out
}

func typeFits(t reflect.Type, d *declaration) string {
	textual := t.Kind() == reflect.String || reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
	var fits bool
	switch {
	case d.Type == "integer":
		fits = t.Kind() == reflect.Int
	case d.Type == "number":
		fits = t.Kind() == reflect.Float64
	case d.Type == "string" && d.Format == "duration":
		fits = t == reflect.TypeFor[time.Duration]()
	case d.Type == "string":
		fits = textual
	}
	if fits {
		return ""
	}
	return fmt.Sprintf("is a %s, which does not hold the schema's type %s (format %q)", t, d.Type, d.Format)
}

// Each schema default, given as a value, passes Load's checks (pattern,
// enum, type, range) and yields the same Config as no value at all: a
// default the schema's own rules refuse fails here, not at a user's start.
func TestSchemaDefaultsAreValidValues(t *testing.T) {
	given := map[string]string{}
	for _, f := range fields() {
		given[key(f)] = fmt.Sprint(declared[key(f)].Default)
	}
	fromSchema, err := Load(vars(given))
	require.NoError(t, err)
	builtIn, err := Load(vars(nil))
	require.NoError(t, err)
	assert.Equal(t, builtIn, fromSchema)
}
