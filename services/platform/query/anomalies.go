package query

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"platform/internal/httpx"
	"platform/query/client"
)

type anomaliesCursor struct {
	TS      time.Time `json:"t"`
	EventID uuid.UUID `json:"e"`
}

// anomalies lists the device's anomalies (written by the detector), by ts
// then event_id. A device is known once it has an event stream.
func (s *Server) anomalies(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceID(w, r)
	if !ok {
		return
	}
	p := newParams(r, "metric", "limit", "cursor")
	var metric *string
	if m := p.q.Get("metric"); m != "" {
		if !metricRE.MatchString(m) {
			p.fail("metric", "must match "+metricRE.String())
		}
		metric = &m
	}
	limit := p.limit()
	var cur anomaliesCursor
	hasCur := p.cursor(&cur)
	if !p.done(w) {
		return
	}
	if !s.exists(r.Context(), w, r, storedStream, id) {
		return
	}
	var ct *time.Time
	var ce *uuid.UUID
	if hasCur {
		ct, ce = &cur.TS, &cur.EventID
	}
	rows, err := s.pool.Query(r.Context(), `
		SELECT event_id, metric, ts, value, score, reading_event_id, model_name, model_version, detected_at
		FROM anomalies
		WHERE device_id = $1
		  AND ($2::text IS NULL OR metric = $2)
		  AND ($3::timestamptz IS NULL OR (ts, event_id) > ($3, $4::uuid))
		ORDER BY ts, event_id
		LIMIT $5`, id, metric, ct, ce, limit+1)
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	as, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Anomaly, error) {
		var a client.Anomaly
		err := row.Scan(&a.EventID, &a.Metric, &a.TS, &a.Value, &a.Score, &a.ReadingEventID, &a.Model.Name, &a.Model.Version, &a.DetectedAt)
		a.TS, a.DetectedAt = a.TS.UTC(), a.DetectedAt.UTC()
		return a, err
	})
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	out := client.AnomalyList{DeviceID: id, Anomalies: as}
	if len(as) > limit {
		last := as[limit-1]
		out.Anomalies = as[:limit]
		out.NextCursor = encodeCursor(anomaliesCursor{TS: last.TS, EventID: last.EventID})
	}
	if out.Anomalies == nil {
		out.Anomalies = []client.Anomaly{}
	}
	if out.Skipped, err = s.skipped(r.Context(), id, metric); err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// maxSkipped bounds the skipped readings listed with a device's anomalies.
const maxSkipped = 100

// skipped lists the device's latest readings the detector judged not
// scored (metric nil: every metric), newest first.
func (s *Server) skipped(ctx context.Context, device string, metric *string) ([]client.Skipped, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT reading_event_id, metric, ts, value, reason, recorded_at
		FROM unscored_readings
		WHERE device_id = $1 AND ($2::text IS NULL OR metric = $2)
		ORDER BY ts DESC, reading_event_id LIMIT $3`, device, metric, maxSkipped)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Skipped, error) {
		var k client.Skipped
		err := row.Scan(&k.ReadingEventID, &k.Metric, &k.TS, &k.Value, &k.Reason, &k.RecordedAt)
		k.TS, k.RecordedAt = k.TS.UTC(), k.RecordedAt.UTC()
		return k, err
	})
	if out == nil {
		out = []client.Skipped{}
	}
	return out, err
}
