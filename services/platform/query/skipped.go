package query

import (
	"context"

	"github.com/jackc/pgx/v5"

	"platform/query/client"
)

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
