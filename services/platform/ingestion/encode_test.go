package ingestion

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/internal/contracts"
	"platform/internal/eventstore"
)

func TestHandWrittenJSONMatchesEncodingJSON(t *testing.T) {
	values := []float64{0, 1, -1.5, 21.25, 1e-7, 123456789, 1e21, 3.4e38, -2.5e-10, math.MaxFloat64, math.SmallestNonzeroFloat64}
	r := Reading{EventID: uuid.New(), DeviceID: "dev-1", TS: time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600)), Metrics: map[string]float64{}}
	for i, v := range values {
		r.Metrics[string(rune('a'+i))+"_m.x-y"] = v
	}
	now := time.Date(2026, 1, 2, 3, 4, 6, 123456000, time.UTC)
	e := eventstore.Event{EventID: r.EventID, StreamID: r.DeviceID, Type: eventstore.TelemetryReceived, Version: 42,
		RecordedAt: now, Payload: appendPayload(nil, r)}

	// What the relay publishes on the telemetry topic.
	want, err := json.Marshal(TelemetryEvent{EventID: e.EventID, Type: e.Type, DeviceID: r.DeviceID, Version: 42,
		TS: formatTS(r.TS), Metrics: r.Metrics, RecordedAt: formatTS(now)})
	require.NoError(t, err)
	got := eventstore.Envelope(nil, e)
	assert.JSONEq(t, string(want), string(got))
	require.NoError(t, contracts.Default().Validate(contracts.TelemetryEvent, got))

	wantP, err := json.Marshal(struct {
		TS      string             `json:"ts"`
		Metrics map[string]float64 `json:"metrics"`
	}{formatTS(r.TS), r.Metrics})
	require.NoError(t, err)
	assert.Equal(t, string(wantP), string(appendPayload(nil, r)))
}

func formatTS(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func TestReadingsFromDoc(t *testing.T) {
	id := uuid.New()
	body := `{"readings":[{"event_id":"` + id.String() + `","device_id":"d1","ts":"2026-01-01T01:00:00+01:00","metrics":{"t":1.5,"n":-2}}]}`
	doc, err := contracts.Default().Decode(contracts.TelemetryBatch, []byte(body))
	require.NoError(t, err)
	rs, err := readingsFromDoc(doc)
	require.NoError(t, err)
	require.Len(t, rs, 1)
	assert.Equal(t, id, rs[0].EventID)
	assert.Equal(t, "d1", rs[0].DeviceID)
	assert.True(t, rs[0].TS.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)))
	assert.Equal(t, map[string]float64{"t": 1.5, "n": -2}, rs[0].Metrics)
}

func TestViolationDetailsIndexItems(t *testing.T) {
	d, items := violationDetails([]contracts.Violation{
		{Pointer: "/readings/3/ts", Message: "a"},
		{Pointer: "/readings/3/metrics/x", Message: "b"},
		{Pointer: "/readings/12", Message: "c"},
		{Pointer: "", Message: "d"},
	})
	assert.Equal(t, 2, items)
	require.Len(t, d, 4)
	assert.Equal(t, 3, *d[0].Index)
	assert.Equal(t, 12, *d[2].Index)
	assert.Nil(t, d[3].Index)
}
