// Package query is the query server (:8081): a consumer of telemetry.v1
// that builds the readings and device_latest projections, and the HTTP API
// that reads them (and the raw event stream).
package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/contracts"
	"platform/internal/kafkax"
)

// ConsumerName keys processed_messages for this projector.
const ConsumerName = "query-projector"

// Message is one inbound telemetry.v1 record value (and where it came from,
// for logs).
type Message struct {
	Key       []byte
	Value     []byte
	Partition int32
	Offset    int64
}

// Projector applies telemetry events to the projections.
type Projector struct {
	pool *pgxpool.Pool
	val  *contracts.Validator
	log  *slog.Logger
}

// newProjector returns a projector writing to pool.
func newProjector(pool *pgxpool.Pool, val *contracts.Validator, log *slog.Logger) *Projector {
	return &Projector{pool: pool, val: val, log: log.With("component", "query-projector")}
}

// Apply applies msgs in one transaction. Messages already applied (by
// event_id, recorded in processed_messages) are skipped. A message that
// does not match telemetry-event.schema.json fails the whole call with a
// *kafkax.PermanentError naming its index (the consume loop dead-letters
// it and applies the others). When Apply returns nil the caller may commit
// the offsets.
func (p *Projector) Apply(ctx context.Context, msgs []Message) (applied int, err error) {
	events, err := kafkax.DecodeEach(msgs, func(m Message) (contracts.Telemetry, error) {
		return p.val.DecodeTelemetry(m.Value)
	}, "not a telemetry event")
	if err != nil || len(events) == 0 {
		return 0, err
	}
	err = pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		ids := make([]string, len(events))
		for i, e := range events {
			ids[i] = e.EventID.String()
		}
		rows, err := tx.Query(ctx, `
			INSERT INTO processed_messages (consumer, message_id)
			SELECT $1, id FROM unnest($2::text[]) AS t(id)
			ON CONFLICT DO NOTHING RETURNING message_id`, ConsumerName, ids)
		if err != nil {
			return err
		}
		fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		isFresh := make(map[string]bool, len(fresh))
		for _, id := range fresh {
			isFresh[id] = true
		}
		var todo []contracts.Telemetry
		for _, e := range events {
			if isFresh[e.EventID.String()] {
				isFresh[e.EventID.String()] = false // a repeat inside msgs
				todo = append(todo, e)
			}
		}
		applied = len(todo)
		if applied == 0 {
			return nil
		}
		// Per device, in version order: the last event wins the header,
		// metrics merge so that every metric keeps its latest value.
		sort.SliceStable(todo, func(i, j int) bool {
			if todo[i].DeviceID != todo[j].DeviceID {
				return todo[i].DeviceID < todo[j].DeviceID
			}
			return todo[i].Version < todo[j].Version
		})
		var rowsOut [][]any
		latest := map[string]contracts.Telemetry{}
		merged := map[string]map[string]float64{}
		for _, e := range todo {
			for name, v := range e.Metrics {
				rowsOut = append(rowsOut, []any{e.DeviceID, e.TS, name, v, e.EventID})
			}
			latest[e.DeviceID] = e
			if merged[e.DeviceID] == nil {
				merged[e.DeviceID] = map[string]float64{}
			}
			for k, v := range e.Metrics {
				merged[e.DeviceID][k] = v
			}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"readings"}, []string{"device_id", "ts", "metric", "value", "event_id"}, pgx.CopyFromRows(rowsOut)); err != nil {
			return fmt.Errorf("copy readings: %w", err)
		}
		devs := make([]string, 0, len(latest))
		for d := range latest {
			devs = append(devs, d)
		}
		sort.Strings(devs)
		tss := make([]time.Time, len(devs))
		vers := make([]int64, len(devs))
		mets := make([]string, len(devs))
		for i, d := range devs {
			tss[i] = latest[d].TS
			vers[i] = latest[d].Version
			b, _ := json.Marshal(merged[d])
			mets[i] = string(b)
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO device_latest (device_id, last_ts, version, metrics)
			SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::jsonb[])
			ON CONFLICT (device_id) DO UPDATE
			SET last_ts = EXCLUDED.last_ts, version = EXCLUDED.version,
			    metrics = device_latest.metrics || EXCLUDED.metrics, updated_at = now()
			WHERE device_latest.version < EXCLUDED.version`, devs, tss, vers, mets)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("apply telemetry: %w", err)
	}
	return applied, nil
}
