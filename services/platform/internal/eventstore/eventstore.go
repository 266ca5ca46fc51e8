// Package eventstore appends events to per-device streams in the events
// table, inside a caller's transaction (so that the outbox rows commit with
// them).
package eventstore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Event types.
const (
	TelemetryReceived   = "TelemetryReceived"
	CommandIssued       = "CommandIssued"
	CommandAcknowledged = "CommandAcknowledged"
	AnomalyDetected     = "AnomalyDetected"
)

// Event is one row of the events table. Append fills Version and RecordedAt.
type Event struct {
	EventID    uuid.UUID
	StreamID   string
	Version    int64
	Type       string
	Payload    []byte // JSON object
	RecordedAt time.Time
}

// Existing returns the subset of ids already stored.
func Existing(ctx context.Context, tx pgx.Tx, ids []uuid.UUID) (map[uuid.UUID]bool, error) {
	out := map[uuid.UUID]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	raw := make([][16]byte, len(ids))
	for i, id := range ids {
		raw[i] = id
	}
	rows, err := tx.Query(ctx, `SELECT event_id FROM events WHERE event_id = ANY($1)`, raw)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id [16]byte
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out[uuid.UUID(id)] = true
	}
	return out, rows.Err()
}

// Append assigns each event the next version of its stream, in slice order,
// and writes them with COPY. The streams rows are locked in stream-id order,
// so concurrent appends to one stream serialize and never deadlock. Events
// whose id already exists make the COPY fail with a unique violation: filter
// them with Existing first and retry the transaction on IsUniqueViolation.
func Append(ctx context.Context, tx pgx.Tx, now time.Time, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	counts := map[string]int64{}
	for _, e := range events {
		counts[e.StreamID]++
	}
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	ns := make([]int64, len(ids))
	for i, id := range ids {
		ns[i] = counts[id]
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO streams (stream_id, version)
		SELECT s, n FROM unnest($1::text[], $2::bigint[]) AS t(s, n) ORDER BY s
		ON CONFLICT (stream_id) DO UPDATE
		   SET version = streams.version + EXCLUDED.version, updated_at = now()
		RETURNING stream_id, version`, ids, ns)
	if err != nil {
		return fmt.Errorf("lock streams: %w", err)
	}
	next := map[string]int64{}
	for rows.Next() {
		var id string
		var last int64
		if err := rows.Scan(&id, &last); err != nil {
			rows.Close()
			return err
		}
		next[id] = last - counts[id] + 1
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("lock streams: %w", err)
	}
	for i := range events {
		e := &events[i]
		e.Version = next[e.StreamID]
		next[e.StreamID]++
		e.RecordedAt = now
	}
	_, err = tx.CopyFrom(ctx, pgx.Identifier{"events"},
		[]string{"event_id", "stream_id", "version", "type", "payload", "recorded_at"},
		pgx.CopyFromSlice(len(events), func(i int) ([]any, error) {
			e := events[i]
			return []any{[16]byte(e.EventID), e.StreamID, e.Version, e.Type, string(e.Payload), e.RecordedAt}, nil
		}))
	if err != nil {
		return fmt.Errorf("copy events: %w", err)
	}
	return nil
}
