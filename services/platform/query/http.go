package query

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	"platform/internal/contracts"
	"platform/internal/httpx"
	"platform/query/client"
)

// Deps are what the query server needs: main passes the real ones, the
// component tests theirs, through the same constructor.
type Deps struct {
	Pool      *pgxpool.Pool        // the projections it reads and writes
	Validator *contracts.Validator // the contracts of schemas/
	Log       *slog.Logger
}

// Server is the query server: its HTTP API over the projections, and the
// projector that keeps them from telemetry.v1.
type Server struct {
	store     store
	projector *Projector
	log       *slog.Logger
}

// New builds the query server from its dependencies.
func New(d Deps) *Server {
	return &Server{store: store{pool: d.Pool}, projector: newProjector(d.Pool, d.Validator, d.Log), log: d.Log}
}

// Projector applies telemetry.v1 to the projections (run it with Consume).
func (s *Server) Projector() *Projector { return s.projector }

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

func (s *Server) deviceID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !contracts.DeviceID.MatchString(id) {
		httpx.WriteError(w, http.StatusBadRequest, httpx.CodeInvalidParam, "invalid device id",
			httpx.Detail{Field: "id", Message: "must match " + contracts.DeviceID.String()})
		return "", false
	}
	return id, true
}

// known answers 404 (and false) unless exists finds the device.
func (s *Server) known(w http.ResponseWriter, r *http.Request, exists func(context.Context, string) (bool, error), id string) bool {
	ok, err := exists(r.Context(), id)
	if err != nil {
		httpx.Failed(w, r, s.log, err)
		return false
	}
	if !ok {
		httpx.WriteError(w, http.StatusNotFound, httpx.CodeNotFound, "device "+id+" not found")
	}
	return ok
}

func (s *Server) devices(w http.ResponseWriter, r *http.Request) {
	p := newParams(r, "limit", "cursor")
	limit := p.limit()
	var after string
	p.cursor(&after)
	if !p.done(w) {
		return
	}
	devs, err := s.store.devices(r.Context(), after, limit)
	writePage(w, r, s.log, devs, err, limit, func(d client.Device) any { return d.DeviceID },
		func(devs []client.Device, next *string) any {
			return client.DeviceList{Devices: devs, NextCursor: next}
		})
}

func (s *Server) latest(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceID(w, r)
	if !ok {
		return
	}
	l, err := s.store.latest(r.Context(), id)
	switch {
	case err != nil:
		httpx.Failed(w, r, s.log, err)
	case l == nil:
		httpx.WriteError(w, http.StatusNotFound, httpx.CodeNotFound, "device "+id+" not found")
	default:
		httpx.WriteJSON(w, http.StatusOK, l)
	}
}

func (s *Server) readings(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceID(w, r)
	if !ok {
		return
	}
	p := newParams(r, "metric", "from", "to", "limit", "cursor")
	q := readingsQuery{device: id, metric: p.metric(), from: p.time("from"), to: p.time("to"), limit: p.limit()}
	if q.from != nil && q.to != nil && !q.from.Before(*q.to) {
		p.fail("from", "must be before to")
		p.fail("to", "must be after from")
	}
	var cur readingsCursor
	if p.cursor(&cur) {
		q.after = &cur
	}
	if !p.done(w) || !s.known(w, r, s.store.projected, id) {
		return
	}
	rs, err := s.store.readings(r.Context(), q)
	writePage(w, r, s.log, rs, err, q.limit, func(x client.Reading) any {
		return readingsCursor{TS: x.TS, EventID: x.EventID, Metric: x.Metric}
	}, func(rs []client.Reading, next *string) any {
		return client.ReadingsPage{DeviceID: id, Readings: rs, NextCursor: next}
	})
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
	if !p.done(w) || !s.known(w, r, s.store.stored, id) {
		return
	}
	evs, err := s.store.events(r.Context(), id, after, limit)
	writePage(w, r, s.log, evs, err, limit, func(e client.Event) any { return e.Version },
		func(evs []client.Event, next *string) any {
			return client.EventsPage{DeviceID: id, Events: evs, NextCursor: next}
		})
}

// anomalies lists the device's anomalies (written by the detector), by ts
// then event_id. A device is known once it has an event stream.
func (s *Server) anomalies(w http.ResponseWriter, r *http.Request) {
	id, ok := s.deviceID(w, r)
	if !ok {
		return
	}
	p := newParams(r, "metric", "limit", "cursor")
	metric, limit := p.metric(), p.limit()
	var cur anomaliesCursor
	var after *anomaliesCursor
	if p.cursor(&cur) {
		after = &cur
	}
	if !p.done(w) || !s.known(w, r, s.store.stored, id) {
		return
	}
	as, err := s.store.anomalies(r.Context(), id, metric, after, limit)
	var skipped []client.Skipped
	if err == nil {
		skipped, err = s.store.skipped(r.Context(), id, metric)
	}
	writePage(w, r, s.log, as, err, limit, func(a client.Anomaly) any {
		return anomaliesCursor{TS: a.TS, EventID: a.EventID}
	}, func(as []client.Anomaly, next *string) any {
		return client.AnomalyList{DeviceID: id, Anomalies: as, NextCursor: next, Skipped: skipped}
	})
}
