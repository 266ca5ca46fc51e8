package query

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/query/client"
)

// store holds the read side's SQL: each method fetches limit+1 rows so that
// the handler knows whether a next page exists.
type store struct{ pool *pgxpool.Pool }

// reread runs a read again when it failed on a lost connection, as after
// the database restarted: the pool's other recent connections are as dead
// as this one, so they are dropped too (Reset) and the next try connects
// afresh. Reads are safe to repeat; any other error is returned at once.
func reread[T any](ctx context.Context, pool *pgxpool.Pool, read func() (T, error)) (T, error) {
	v, err := read()
	for attempt := 0; attempt < 2 && err != nil && connectionLost(err) && ctx.Err() == nil; attempt++ {
		pool.Reset()
		v, err = read()
	}
	return v, err
}

// connectionLost: the session ended under the query — a network error, a
// connection that could not be made, or the server terminating the backend
// (class 08, 57P01–57P03). A bad row or a timeout is not one.
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	var netErr net.Error
	var connectErr *pgconn.ConnectError
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.As(err, &connectErr) || (errors.As(err, &netErr) && !netErr.Timeout())
}

// projected: the device has a latest-reading projection.
func (s store) projected(ctx context.Context, id string) (bool, error) {
	return reread(ctx, s.pool, func() (bool, error) {
		var ok bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM device_latest WHERE device_id = $1)`, id).Scan(&ok)
		return ok, err
	})
}

// stored: the device has an event stream.
func (s store) stored(ctx context.Context, id string) (bool, error) {
	return reread(ctx, s.pool, func() (bool, error) {
		var ok bool
		err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM events WHERE stream_id = $1)`, id).Scan(&ok)
		return ok, err
	})
}

func (s store) devices(ctx context.Context, after string, limit int) ([]client.Device, error) {
	return reread(ctx, s.pool, func() ([]client.Device, error) {
		rows, err := s.pool.Query(ctx, `
			SELECT device_id, last_ts, version FROM device_latest
			WHERE device_id > $1 ORDER BY device_id LIMIT $2`, after, limit+1)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Device, error) {
			var d client.Device
			err := row.Scan(&d.DeviceID, &d.LastTS, &d.Version)
			d.LastTS = d.LastTS.UTC()
			return d, err
		})
	})
}

// latest returns the device's latest projection, nil when it has none.
func (s store) latest(ctx context.Context, id string) (*client.Latest, error) {
	return reread(ctx, s.pool, func() (*client.Latest, error) {
		var l client.Latest
		err := s.pool.QueryRow(ctx, `SELECT device_id, last_ts, version, metrics FROM device_latest WHERE device_id = $1`, id).
			Scan(&l.DeviceID, &l.LastTS, &l.Version, &l.Metrics)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, nil
		}
		l.LastTS = l.LastTS.UTC()
		return &l, err
	})
}

type readingsCursor struct {
	TS      time.Time `json:"t"`
	EventID uuid.UUID `json:"e"`
	Metric  string    `json:"m"`
}

type readingsQuery struct {
	device   string
	metric   *string
	from, to *time.Time
	after    *readingsCursor
	limit    int
}

func (s store) readings(ctx context.Context, q readingsQuery) ([]client.Reading, error) {
	return reread(ctx, s.pool, func() ([]client.Reading, error) {
		var ct *time.Time
		var ce *uuid.UUID
		var cm *string
		if q.after != nil {
			ct, ce, cm = &q.after.TS, &q.after.EventID, &q.after.Metric
		}
		rows, err := s.pool.Query(ctx, `
			SELECT event_id, ts, metric, value FROM readings
			WHERE device_id = $1
			  AND ($2::text IS NULL OR metric = $2)
			  AND ($3::timestamptz IS NULL OR ts >= $3)
			  AND ($4::timestamptz IS NULL OR ts < $4)
			  AND ($5::timestamptz IS NULL OR (ts, event_id, metric) > ($5, $6::uuid, $7::text))
			ORDER BY ts, event_id, metric
			LIMIT $8`, q.device, q.metric, q.from, q.to, ct, ce, cm, q.limit+1)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Reading, error) {
			var x client.Reading
			err := row.Scan(&x.EventID, &x.TS, &x.Metric, &x.Value)
			x.TS = x.TS.UTC()
			return x, err
		})
	})
}

func (s store) events(ctx context.Context, id string, afterVersion int64, limit int) ([]client.Event, error) {
	return reread(ctx, s.pool, func() ([]client.Event, error) {
		rows, err := s.pool.Query(ctx, `
			SELECT event_id, version, type, payload, recorded_at FROM events
			WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3`, id, afterVersion, limit+1)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Event, error) {
			var e client.Event
			var payload []byte
			err := row.Scan(&e.EventID, &e.Version, &e.Type, &payload, &e.RecordedAt)
			e.Payload = payload
			e.RecordedAt = e.RecordedAt.UTC()
			return e, err
		})
	})
}

type anomaliesCursor struct {
	TS      time.Time `json:"t"`
	EventID uuid.UUID `json:"e"`
}

func (s store) anomalies(ctx context.Context, id string, metric *string, after *anomaliesCursor, limit int) ([]client.Anomaly, error) {
	return reread(ctx, s.pool, func() ([]client.Anomaly, error) {
		var ct *time.Time
		var ce *uuid.UUID
		if after != nil {
			ct, ce = &after.TS, &after.EventID
		}
		rows, err := s.pool.Query(ctx, `
			SELECT event_id, metric, ts, value, score, reading_event_id, model_name, model_version, detected_at
			FROM anomalies
			WHERE device_id = $1
			  AND ($2::text IS NULL OR metric = $2)
			  AND ($3::timestamptz IS NULL OR (ts, event_id) > ($3, $4::uuid))
			ORDER BY ts, event_id
			LIMIT $5`, id, metric, ct, ce, limit+1)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Anomaly, error) {
			var a client.Anomaly
			err := row.Scan(&a.EventID, &a.Metric, &a.TS, &a.Value, &a.Score, &a.ReadingEventID, &a.Model.Name, &a.Model.Version, &a.DetectedAt)
			a.TS, a.DetectedAt = a.TS.UTC(), a.DetectedAt.UTC()
			return a, err
		})
	})
}

// maxSkipped bounds the skipped readings listed with a device's anomalies.
const maxSkipped = 100

// skipped lists the device's latest readings the detector judged not
// scored (metric nil: every metric), newest first.
func (s store) skipped(ctx context.Context, device string, metric *string) ([]client.Skipped, error) {
	return reread(ctx, s.pool, func() ([]client.Skipped, error) {
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
	})
}
