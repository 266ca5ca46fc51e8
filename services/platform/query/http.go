package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/httpx"
	"platform/query/client"
)

// Page sizes.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

var (
	deviceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	metricRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// Server is the query HTTP API.
type Server struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

// NewServer reads from pool.
func NewServer(pool *pgxpool.Pool, log *slog.Logger) *Server { return &Server{pool: pool, log: log} }

// Handler returns the router with the API and the health endpoints.
func (s *Server) Handler(checks map[string]httpx.Check) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /query/v1/devices", s.devices)
	mux.HandleFunc("GET /query/v1/devices/{id}/latest", s.latest)
	mux.HandleFunc("GET /query/v1/devices/{id}/readings", s.readings)
	mux.HandleFunc("GET /query/v1/devices/{id}/events", s.events)
	mux.HandleFunc("GET /query/v1/devices/{id}/anomalies", s.anomalies)
	httpx.HandleHealth(mux, "query", checks)
	return httpx.Recover(s.log, mux)
}

// params collects query-string problems so that one 400 names them all.
type params struct {
	q    url.Values
	bad  []httpx.Detail
	seen map[string]bool
}

func newParams(r *http.Request, allowed ...string) *params {
	p := &params{q: r.URL.Query(), seen: map[string]bool{}}
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for k := range p.q {
		if !ok[k] {
			p.fail(k, "unknown parameter")
		}
	}
	return p
}

func (p *params) fail(name, msg string) {
	p.bad = append(p.bad, httpx.Detail{Field: name, Message: msg})
}

func (p *params) limit() int {
	v := p.q.Get("limit")
	if v == "" {
		return DefaultLimit
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxLimit {
		p.fail("limit", fmt.Sprintf("must be a whole number between 1 and %d", MaxLimit))
		return DefaultLimit
	}
	return n
}

func (p *params) time(name string) *time.Time {
	v := p.q.Get(name)
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		p.fail(name, "must be an RFC 3339 date-time, e.g. 2026-01-01T00:00:00Z")
		return nil
	}
	return &t
}

func (p *params) cursor(into any) bool {
	v := p.q.Get("cursor")
	if v == "" {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err == nil {
		err = json.Unmarshal(b, into)
	}
	if err != nil {
		p.fail("cursor", "is not a cursor returned by this API")
		return false
	}
	return true
}

func (p *params) done(w http.ResponseWriter) bool {
	if len(p.bad) == 0 {
		return true
	}
	httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidParam, fmt.Sprintf("%d invalid parameter(s)", len(p.bad)), p.bad...)
	return false
}

func encodeCursor(v any) *string {
	b, _ := json.Marshal(v)
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

func (s *Server) deviceID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !deviceRE.MatchString(id) {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidParam, "invalid device id",
			httpx.Detail{Field: "id", Message: "must match " + deviceRE.String()})
		return "", false
	}
	return id, true
}

func (s *Server) exists(ctx context.Context, w http.ResponseWriter, r *http.Request, q, id string) bool {
	var ok bool
	if err := s.pool.QueryRow(ctx, q, id).Scan(&ok); err != nil {
		httpx.Internal(w, r, s.log, err)
		return false
	}
	if !ok {
		httpx.WriteError(w, http.StatusNotFound, httpx.CodeNotFound, "device "+id+" not found")
	}
	return ok
}

const (
	projectedDevice = `SELECT EXISTS (SELECT 1 FROM device_latest WHERE device_id = $1)`
	storedStream    = `SELECT EXISTS (SELECT 1 FROM streams WHERE stream_id = $1)`
)

func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	p := newParams(r, "limit", "cursor")
	limit := p.limit()
	var after string
	p.cursor(&after)
	if !p.done(w) {
		return
	}
	rows, err := s.pool.Query(r.Context(), `
		SELECT device_id, last_ts, version FROM device_latest
		WHERE device_id > $1 ORDER BY device_id LIMIT $2`, after, limit+1)
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	devs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Device, error) {
		var d client.Device
		err := row.Scan(&d.DeviceID, &d.LastTS, &d.Version)
		d.LastTS = d.LastTS.UTC()
		return d, err
	})
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	out := client.DeviceList{Devices: devs}
	if len(devs) > limit {
		out.Devices = devs[:limit]
		out.NextCursor = encodeCursor(devs[limit-1].DeviceID)
	}
	if out.Devices == nil {
		out.Devices = []client.Device{}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) latest(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceID(w, r)
	if !ok {
		return
	}
	var l client.Latest
	err := s.pool.QueryRow(r.Context(), `SELECT device_id, last_ts, version, metrics FROM device_latest WHERE device_id = $1`, id).
		Scan(&l.DeviceID, &l.LastTS, &l.Version, &l.Metrics)
	if errors.Is(err, pgx.ErrNoRows) {
		httpx.WriteError(w, http.StatusNotFound, httpx.CodeNotFound, "device "+id+" not found")
		return
	}
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	l.LastTS = l.LastTS.UTC()
	httpx.WriteJSON(w, http.StatusOK, l)
}

type readingsCursor struct {
	TS      time.Time `json:"t"`
	EventID uuid.UUID `json:"e"`
	Metric  string    `json:"m"`
}

func (s *Server) readings(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceID(w, r)
	if !ok {
		return
	}
	p := newParams(r, "metric", "from", "to", "limit", "cursor")
	var metric *string
	if m := p.q.Get("metric"); m != "" {
		if !metricRE.MatchString(m) {
			p.fail("metric", "must match "+metricRE.String())
		}
		metric = &m
	}
	from, to := p.time("from"), p.time("to")
	if from != nil && to != nil && !from.Before(*to) {
		p.fail("from", "must be before to")
		p.fail("to", "must be after from")
	}
	limit := p.limit()
	var cur readingsCursor
	hasCur := p.cursor(&cur)
	if !p.done(w) {
		return
	}
	if !s.exists(r.Context(), w, r, projectedDevice, id) {
		return
	}
	var ct *time.Time
	var ce *uuid.UUID
	var cm *string
	if hasCur {
		ct, ce, cm = &cur.TS, &cur.EventID, &cur.Metric
	}
	rows, err := s.pool.Query(r.Context(), `
		SELECT event_id, ts, metric, value FROM readings
		WHERE device_id = $1
		  AND ($2::text IS NULL OR metric = $2)
		  AND ($3::timestamptz IS NULL OR ts >= $3)
		  AND ($4::timestamptz IS NULL OR ts < $4)
		  AND ($5::timestamptz IS NULL OR (ts, event_id, metric) > ($5, $6::uuid, $7::text))
		ORDER BY ts, event_id, metric
		LIMIT $8`, id, metric, from, to, ct, ce, cm, limit+1)
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	rs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Reading, error) {
		var x client.Reading
		err := row.Scan(&x.EventID, &x.TS, &x.Metric, &x.Value)
		x.TS = x.TS.UTC()
		return x, err
	})
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	out := client.ReadingsPage{DeviceID: id, Readings: rs}
	if len(rs) > limit {
		last := rs[limit-1]
		out.Readings = rs[:limit]
		out.NextCursor = encodeCursor(readingsCursor{TS: last.TS, EventID: last.EventID, Metric: last.Metric})
	}
	if out.Readings == nil {
		out.Readings = []client.Reading{}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceID(w, r)
	if !ok {
		return
	}
	p := newParams(r, "limit", "cursor")
	limit := p.limit()
	var after int64
	p.cursor(&after)
	if !p.done(w) {
		return
	}
	if !s.exists(r.Context(), w, r, storedStream, id) {
		return
	}
	rows, err := s.pool.Query(r.Context(), `
		SELECT event_id, version, type, payload, recorded_at FROM events
		WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3`, id, after, limit+1)
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	evs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (client.Event, error) {
		var e client.Event
		var payload []byte
		err := row.Scan(&e.EventID, &e.Version, &e.Type, &payload, &e.RecordedAt)
		e.Payload = payload
		e.RecordedAt = e.RecordedAt.UTC()
		return e, err
	})
	if err != nil {
		httpx.Internal(w, r, s.log, err)
		return
	}
	out := client.EventsPage{DeviceID: id, Events: evs}
	if len(evs) > limit {
		out.Events = evs[:limit]
		out.NextCursor = encodeCursor(evs[limit-1].Version)
	}
	if out.Events == nil {
		out.Events = []client.Event{}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
