package detector

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/tracing"
)

// processed returns which event ids are already recorded.
func (d *Detector) processed(ctx context.Context, events []contracts.Telemetry) (map[uuid.UUID]bool, error) {
	ids := make([]string, len(events))
	for i, e := range events {
		ids[i] = e.EventID.String()
	}
	rows, err := d.pool.Query(ctx, `SELECT message_id FROM processed_messages WHERE consumer = $1 AND message_id = ANY($2::text[])`, d.cfg.Consumer, ids)
	if err != nil {
		return nil, fmt.Errorf("read processed_messages: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read processed_messages: %w", err)
	}
	out := make(map[uuid.UUID]bool, len(done))
	for _, s := range done {
		if id, err := uuid.Parse(s); err == nil {
			out[id] = true
		}
	}
	return out, nil
}

// store records the fresh ids and, for those this transaction recorded,
// their verdicts: anomalies (event, anomalies row, anomalies.v1 message)
// and readings not scored. It returns the anomalies stored.
func (d *Detector) store(ctx context.Context, ids []string, found []Event, unscored []Unscored) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	var stored []Event
	var notScored []Unscored
	devices := make([]string, len(found))
	for i, e := range found {
		devices[i] = e.DeviceID
	}
	err := d.events.Write(ctx, devices, func(tx *eventstore.Tx) error {
		rows, err := tx.Query(ctx, `
			INSERT INTO processed_messages (consumer, message_id)
			SELECT $1, id FROM unnest($2::text[]) AS t(id)
			ON CONFLICT DO NOTHING RETURNING message_id`, d.cfg.Consumer, ids)
		if err != nil {
			return err
		}
		fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		mine := make(map[uuid.UUID]bool, len(fresh))
		for _, id := range fresh {
			mine[uuid.MustParse(id)] = true
		}
		if notScored, err = storeUnscored(ctx, tx, mine, unscored); err != nil {
			return err
		}
		var todo []Event
		for _, e := range found {
			if mine[e.ReadingEventID] {
				todo = append(todo, e)
			}
		}
		if stored, err = d.appendAnomalyEvents(ctx, tx, todo); err != nil || len(stored) == 0 {
			return err
		}
		rowsOut := make([][]any, len(stored))
		for i, e := range stored {
			rowsOut[i] = []any{e.EventID, e.DeviceID, e.Metric, e.TS, e.Value, e.Score, e.ReadingEventID, e.Model.Name, e.Model.Version, e.DetectedAt}
		}
		_, err = tx.CopyFrom(ctx, pgx.Identifier{"anomalies"},
			[]string{"event_id", "device_id", "metric", "ts", "value", "score", "reading_event_id", "model_name", "model_version", "detected_at"},
			pgx.CopyFromRows(rowsOut))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store anomalies: %w", err)
	}
	for _, e := range stored {
		d.log.Info("anomaly detected", "device_id", e.DeviceID, "metric", e.Metric, "ts", e.TS, "value", e.Value, "score", e.Score, "event_id", e.EventID, "version", e.Version)
	}
	for _, u := range notScored {
		d.log.Warn("reading not scored", "device_id", u.DeviceID, "metric", u.Metric, "event_id", u.ReadingEventID, "reason", u.Reason)
	}
	return len(stored), nil
}

// appendAnomalyEvents is the one place the detector writes events: it
// appends those of found that are not stored yet (by event id) to their
// device streams for anomalies.v1 and fills their Version. It returns the
// events it appended.
func (d *Detector) appendAnomalyEvents(ctx context.Context, tx *eventstore.Tx, found []Event) ([]Event, error) {
	byID := make(map[uuid.UUID]Event, len(found))
	evs := make([]eventstore.Event, len(found))
	for i, e := range found {
		byID[e.EventID] = e
		p, _ := json.Marshal(map[string]any{
			"metric": e.Metric, "ts": e.TS, "value": e.Value, "score": e.Score,
			"reading_event_id": e.ReadingEventID, "model": e.Model, "detected_at": e.DetectedAt,
		})
		evs[i] = eventstore.Event{EventID: e.EventID, StreamID: e.DeviceID, Type: eventstore.AnomalyDetected,
			Topic: d.cfg.Topic, Payload: p, RecordedAt: e.DetectedAt, TraceContext: tracing.Traceparent(e.trace)}
	}
	appended, err := tx.AppendNew(ctx, evs)
	if err != nil {
		return nil, err
	}
	keep := make([]Event, len(appended))
	for i, ev := range appended {
		keep[i] = byID[ev.EventID]
		keep[i].Version = ev.Version
		if err := d.val.Validate(contracts.AnomalyEvent, eventstore.Envelope(nil, ev)); err != nil {
			return nil, fmt.Errorf("anomaly event: %w", err)
		}
	}
	return keep, nil
}

// storeUnscored records the readings not scored whose ids this
// transaction recorded (mine), and returns them.
func storeUnscored(ctx context.Context, tx *eventstore.Tx, mine map[uuid.UUID]bool, unscored []Unscored) ([]Unscored, error) {
	var todo []Unscored
	var rows [][]any
	for _, u := range unscored {
		if mine[u.ReadingEventID] {
			todo = append(todo, u)
			rows = append(rows, []any{u.ReadingEventID, u.Metric, u.DeviceID, u.TS, u.Value, u.Reason})
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	_, err := tx.CopyFrom(ctx, pgx.Identifier{"unscored_readings"},
		[]string{"reading_event_id", "metric", "device_id", "ts", "value", "reason"}, pgx.CopyFromRows(rows))
	if err != nil {
		return nil, fmt.Errorf("copy unscored_readings: %w", err)
	}
	return todo, nil
}
