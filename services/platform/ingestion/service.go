// Package ingestion is the ingestion server (:8080): HTTP and MQTT
// telemetry in, TelemetryReceived events and outbox rows out, in one
// transaction.
package ingestion

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/ingestion/client"
	"platform/internal/eventstore"
	"platform/internal/outbox"
	"platform/internal/postgres"
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
	pool  *pgxpool.Pool
	topic string
	now   func() time.Time
}

// NewService stores into pool and enqueues outbox rows for topic.
func NewService(pool *pgxpool.Pool, topic string) *Service {
	return &Service{pool: pool, topic: topic, now: time.Now}
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

// The two payloads below are written by hand: they are on the hot path and
// their strings (uuid, device id, metric names, RFC 3339) never need JSON
// escaping (the schemas' patterns exclude it). Tests compare them with
// encoding/json.

// appendPayload is the events.payload of TelemetryReceived: {ts, metrics}.
func appendPayload(b []byte, r Reading) []byte {
	b = append(b, `{"ts":"`...)
	b = r.TS.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","metrics":`...)
	b = appendMetrics(b, r.Metrics)
	return append(b, '}')
}

// appendTelemetryEvent is telemetry-event.schema.json.
func appendTelemetryEvent(b []byte, e eventstore.Event, r Reading, recorded time.Time) []byte {
	b = append(b, `{"event_id":"`...)
	b = append(b, e.EventID.String()...)
	b = append(b, `","type":"`...)
	b = append(b, e.Type...)
	b = append(b, `","device_id":"`...)
	b = append(b, r.DeviceID...)
	b = append(b, `","version":`...)
	b = strconv.AppendInt(b, e.Version, 10)
	b = append(b, `,"ts":"`...)
	b = r.TS.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","metrics":`...)
	b = appendMetrics(b, r.Metrics)
	b = append(b, `,"recorded_at":"`...)
	b = recorded.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
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
// the batch) as TelemetryReceived events plus one outbox row each, in one
// transaction.
func (s *Service) Ingest(ctx context.Context, readings []Reading) (Result, error) {
	seen := make(map[uuid.UUID]bool, len(readings))
	uniq := make([]Reading, 0, len(readings))
	for _, r := range readings {
		if !seen[r.EventID] {
			seen[r.EventID] = true
			uniq = append(uniq, r)
		}
	}
	var res Result
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		res, err = s.ingestOnce(ctx, uniq)
		if err == nil || !postgres.IsRetryable(err) {
			break
		}
	}
	if err != nil {
		return Result{}, err
	}
	res.Duplicates += len(readings) - len(uniq)
	return res, nil
}

func (s *Service) ingestOnce(ctx context.Context, readings []Reading) (Result, error) {
	var res Result
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ids := make([]uuid.UUID, len(readings))
		for i, r := range readings {
			ids[i] = r.EventID
		}
		existing, err := eventstore.Existing(ctx, tx, ids)
		if err != nil {
			return err
		}
		events := make([]eventstore.Event, 0, len(readings))
		fresh := make([]Reading, 0, len(readings))
		for _, r := range readings {
			if existing[r.EventID] {
				continue
			}
			p := appendPayload(nil, r)
			fresh = append(fresh, r)
			events = append(events, eventstore.Event{EventID: r.EventID, StreamID: r.DeviceID, Type: eventstore.TelemetryReceived, Payload: p})
		}
		res = Result{Accepted: len(events), Duplicates: len(readings) - len(events)}
		if len(events) == 0 {
			return nil
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		if err := eventstore.Append(ctx, tx, now, events); err != nil {
			return err
		}
		msgs := make([]outbox.Message, len(events))
		for i, e := range events {
			r := fresh[i]
			b := appendTelemetryEvent(make([]byte, 0, 256), e, r, now)
			msgs[i] = outbox.Message{Topic: s.topic, Key: r.DeviceID, Payload: b}
		}
		return outbox.Enqueue(ctx, tx, outbox.SinkKafka, msgs)
	})
	if err != nil {
		return Result{}, fmt.Errorf("ingest: %w", err)
	}
	return res, nil
}

func formatTS(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
