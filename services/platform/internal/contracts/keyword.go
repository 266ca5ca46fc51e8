package contracts

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"platform/schemas"
)

// Keyword returns the value at a JSON pointer of a schema file, such as
// Keyword(TelemetryReading, "/$defs/uuid/pattern"): code that checks a
// format by hand takes its pattern or limit from the contract itself
// instead of a copy.
func Keyword(schema, pointer string) (any, error) {
	b, err := fs.ReadFile(schemas.FS, schema)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("schema %s: %w", schema, err)
	}
	for _, tok := range strings.Split(strings.TrimPrefix(pointer, "/"), "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		switch node := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = node[tok]; !ok {
				return nil, fmt.Errorf("schema %s has nothing at %s", schema, pointer)
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(node) {
				return nil, fmt.Errorf("schema %s has nothing at %s", schema, pointer)
			}
			v = node[i]
		default:
			return nil, fmt.Errorf("schema %s has nothing at %s", schema, pointer)
		}
	}
	return v, nil
}

// KeywordString is Keyword for a string value (a pattern).
func KeywordString(schema, pointer string) (string, error) {
	v, err := Keyword(schema, pointer)
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("schema %s: %s is not a string", schema, pointer)
	}
	return s, nil
}

// KeywordInt is Keyword for an integer value (a limit).
func KeywordInt(schema, pointer string) (int, error) {
	v, err := Keyword(schema, pointer)
	if err != nil {
		return 0, err
	}
	f, ok := v.(float64)
	if !ok || f != float64(int(f)) {
		return 0, fmt.Errorf("schema %s: %s is not an integer", schema, pointer)
	}
	return int(f), nil
}

// Values of the contracts that code checks by hand, each read once.
var (
	// DeviceID is the device_id pattern of a telemetry reading.
	DeviceID = MustPattern(TelemetryReading, "/$defs/device_id/pattern")
	// Metric is the pattern of a metric name of a telemetry reading.
	Metric = MustPattern(TelemetryReading, "/$defs/metrics/propertyNames/pattern")
	// MaxScorePoints is the most points one score request may carry.
	MaxScorePoints = mustInt(ScoreRequest, "/properties/points/maxItems")
)

func mustInt(schema, pointer string) int {
	n, err := KeywordInt(schema, pointer)
	if err != nil {
		panic("contracts: " + err.Error())
	}
	return n
}

// MustPattern compiles the pattern at a JSON pointer of a schema file. The
// schemas are embedded, so a missing pattern is a bug: it panics.
func MustPattern(schema, pointer string) *regexp.Regexp {
	src, err := KeywordString(schema, pointer)
	if err != nil {
		panic("contracts: " + err.Error())
	}
	return regexp.MustCompile(src)
}
