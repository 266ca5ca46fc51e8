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
// field and the reverse, with the same default, range, secret flag and a
// Go type that holds the schema's type.
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
	if def, ok := f.Tag.Lookup("envDefault"); !ok {
		out = append(out, fmt.Sprintf("has no envDefault; the schema's default is %v", d.Default))
	} else if !sameDefault(def, d) {
		out = append(out, fmt.Sprintf("has envDefault %q; the schema's default is %v", def, d.Default))
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

func sameDefault(tag string, d *declaration) bool {
	switch want := d.Default.(type) {
	case float64:
		if d.Type == "integer" {
			got, err := strconv.Atoi(tag)
			return err == nil && float64(got) == want
		}
		got, err := strconv.ParseFloat(tag, 64)
		return err == nil && got == want
	case string:
		if d.Format == "duration" {
			got, err1 := time.ParseDuration(tag)
			w, err2 := time.ParseDuration(want)
			return err1 == nil && err2 == nil && got == w
		}
		return tag == want
	}
	return false
}

// Each schema default, given as a value, passes Load's checks and yields
// the same Config as no value at all.
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
