package contracts

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The telemetry batch is validated item by item in parallel; the shape
// that makes this equivalent is checked on the schema file itself.
func TestBatchIsSplittable(t *testing.T) {
	a, ok := Default().arrays[TelemetryBatch]
	require.True(t, ok, "telemetry-batch.schema.json no longer has the arraySplit shape: Decode falls back to serial validation")
	assert.Equal(t, arraySplit{prop: "readings", maxItems: 1000, item: "telemetry-reading.schema.json"}, a)

	_, ok = splittable([]byte(`{"$id":"b.json","type":"object","additionalProperties":false,"required":["r"],"properties":{"r":{"type":"array","minItems":1,"maxItems":9,"items":{"$ref":"x.json"}}}}`))
	assert.True(t, ok)
	for _, s := range []string{
		`{"type":"object","properties":{"r":{"type":"array","minItems":1,"maxItems":9,"items":{"$ref":"x.json"},"uniqueItems":true}}}`,
		`{"type":"object","properties":{"r":{"type":"array","minItems":0,"maxItems":9,"items":{"$ref":"x.json"}}}}`,
		`{"type":"object","properties":{"r":{"type":"array","minItems":1,"maxItems":9,"items":{"$ref":"x.json#/$defs/a"}}}}`,
		`{"type":"object","properties":{"r":{"type":"array","minItems":1,"maxItems":9,"items":{"$ref":"x.json","type":"object"}}}}`,
		`{"type":"object","properties":{"r":{"type":"array","minItems":1,"maxItems":9,"items":{"$ref":"x.json"}}},"allOf":[{"properties":{"r":{"uniqueItems":true}}}]}`,
	} {
		_, ok := splittable([]byte(s))
		assert.False(t, ok, s)
	}
}

// Decode (parallel items) and Validate (plain) give the same verdict and
// the same violations, wherever the bad item sits.
func TestDecodeParallelMatchesPlain(t *testing.T) {
	v := Default()
	mutate := func(n int, f func(rs []any, top map[string]any)) []byte {
		var doc map[string]any
		require.NoError(t, json.Unmarshal(batchBody(n), &doc))
		f(doc["readings"].([]any), doc)
		b, err := json.Marshal(doc)
		require.NoError(t, err)
		return b
	}
	cases := map[string][]byte{
		"valid 1000": batchBody(1000),
		"valid 64":   batchBody(64),
		"valid 1":    batchBody(1),
		"1001":       batchBody(1001),
		"extra top":  mutate(1000, func(_ []any, top map[string]any) { top["x"] = 1 }),
	}
	for _, i := range []int{0, 1, 499, 500, 501, 998, 999} {
		cases[fmt.Sprintf("bad uuid at %d", i)] = mutate(1000, func(rs []any, _ map[string]any) { rs[i].(map[string]any)["event_id"] = "x" })
		cases[fmt.Sprintf("bad ts at %d", i)] = mutate(1000, func(rs []any, _ map[string]any) { rs[i].(map[string]any)["ts"] = "2026-13-01T00:00:00Z" })
		cases[fmt.Sprintf("not an object at %d", i)] = mutate(1000, func(rs []any, _ map[string]any) { rs[i] = 3 })
	}
	cases["two bad"] = mutate(1000, func(rs []any, _ map[string]any) {
		rs[3].(map[string]any)["metrics"] = map[string]any{"t": "a"}
		rs[900].(map[string]any)["device_id"] = "a/b"
	})
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			want := v.Validate(TelemetryBatch, body)
			doc, got := v.Decode(TelemetryBatch, body)
			assert.Equal(t, want, got)
			if want == nil {
				var plain any
				d := json.NewDecoder(bytes.NewReader(body))
				d.UseNumber()
				require.NoError(t, d.Decode(&plain))
				assert.Equal(t, plain, doc)
			}
		})
	}
}
