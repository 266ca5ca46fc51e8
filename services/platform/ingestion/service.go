// Package ingestion is the ingestion server (:8080): HTTP and MQTT
// telemetry in, TelemetryReceived events out (the event store publishes
// them to the telemetry topic).
package ingestion

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"

	"platform/ingestion/client"
	"platform/internal/eventstore"
	"platform/internal/tracing"
)

// Reading is one validated reading.
type Reading = client.Reading

// Result counts a batch's outcome.
type Result struct {
	Accepted   int
	Duplicates int
}

// Service stores telemetry.
type Service struct {
	store *eventstore.Store
	topic string
}

// NewService appends to store events that the relay publishes on topic.
func NewService(store *eventstore.Store, topic string) *Service {
	return &Service{store: store, topic: topic}
}

// TelemetryEvent is telemetry-event.schema.json, the telemetry.v1 value.
type TelemetryEvent struct {
	EventID    uuid.UUID          `json:"event_id"`
	Type       string             `json:"type"`
	DeviceID   string             `json:"device_id"`
	Version    int64              `json:"version"`
	TS         string             `json:"ts"`
	Metrics    map[string]float64 `json:"metrics"`
	RecordedAt string             `json:"recorded_at"`
}

// The payload is written by hand: it is on the hot path and its strings
// (metric names, RFC 3339) never need JSON escaping (the schemas' patterns
// exclude it). Tests compare it with encoding/json.

// appendPayload is the events.payload of TelemetryReceived: {ts, metrics}.
func appendPayload(b []byte, r Reading) []byte {
	b = append(b, `{"ts":"`...)
	b = r.TS.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","metrics":`...)
	b = appendMetrics(b, r.Metrics)
	return append(b, '}')
}

func appendMetrics(b []byte, m map[string]float64) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
		b = appendFloat(b, m[k])
	}
	return append(b, '}')
}

// appendFloat formats like encoding/json.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9, as encoding/json does
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// Ingest appends the readings not seen before (by event_id, also within
// the batch) as TelemetryReceived events for the telemetry topic, in one
// transaction. Each event keeps the trace context of ctx's span (the
// request's): one batch, one trace.
func (s *Service) Ingest(ctx context.Context, readings []Reading) (Result, error) {
	tp := tracing.FromContext(ctx)
	return s.ingest(ctx, readings, func(int) string { return tp })
}

// ingest is Ingest with reading i's trace context traceOf(i).
func (s *Service) ingest(ctx context.Context, readings []Reading, traceOf func(i int) string) (Result, error) {
	events := make([]eventstore.Event, len(readings))
	devices := make([]string, 0, 8)
	known := make(map[string]bool, 8)
	for i, r := range readings {
		if !known[r.DeviceID] {
			known[r.DeviceID] = true
			devices = append(devices, r.DeviceID)
		}
		events[i] = eventstore.Event{
			EventID: r.EventID, StreamID: r.DeviceID, Type: eventstore.TelemetryReceived,
			Topic: s.topic, Payload: appendPayload(make([]byte, 0, 96), r), TraceContext: traceOf(i),
		}
	}
	var stored []eventstore.Event
	err := s.store.Write(ctx, devices, func(tx *eventstore.Tx) (err error) {
		stored, err = tx.AppendNew(ctx, events)
		return err
	})
	if err != nil {
		return Result{}, fmt.Errorf("ingest: %w", err)
	}
	return Result{Accepted: len(stored), Duplicates: len(readings) - len(stored)}, nil
}
