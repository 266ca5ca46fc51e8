//go:build component

package query_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/ingestion"
	ingclient "platform/ingestion/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/kafkax"
	"platform/internal/postgres"
	"platform/internal/testdb"
	"platform/internal/testserver"
	"platform/query"
	"platform/query/client"
)

var (
	baseURL string
	db      *testdb.DB
	cli     *client.Client
	proj    *query.Projector
	ing     *ingestion.Service
	log     = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	testserver.Main(m, "query", log, func(d *testdb.DB) http.Handler {
		db = d
		srv := query.New(query.Deps{Pool: db.Pool, Validator: contracts.Default(), Log: log})
		proj = srv.Projector()
		ing = ingestion.NewService(eventstore.New(db.Pool), "telemetry.v1")
		return srv.Handler(nil)
	}, func(url string) { baseURL, cli = url, client.New(url, nil) })
}

func reset(t *testing.T) {
	t.Helper()
	require.NoError(t, db.Truncate(context.Background(), "events", "relay_cursors", "readings", "device_latest", "processed_messages"))
}

// capture is the Kafka stand-in: what the relay would publish on telemetry.v1.
type capture struct {
	mu   sync.Mutex
	msgs []query.Message
}

func (c *capture) Publish(_ context.Context, msgs []eventstore.Message) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range msgs {
		c.msgs = append(c.msgs, query.Message{Key: []byte(m.Key), Value: m.Value, Offset: int64(len(c.msgs))})
	}
	return len(msgs), nil
}

// ingest stores readings through the ingestion service and returns the
// records the relay would put on telemetry.v1.
func ingest(t *testing.T, rs ...ingclient.Reading) []query.Message {
	t.Helper()
	ctx := context.Background()
	_, err := ing.Ingest(ctx, rs)
	require.NoError(t, err)
	require.NoError(t, db.Settled(ctx))
	c := &capture{}
	relay, err := eventstore.NewRelay(db.Pool, c, eventstore.RelayConfig{}, log)
	require.NoError(t, err)
	defer relay.Close()
	_, err = relay.Drain(ctx)
	require.NoError(t, err)
	return c.msgs
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func rd(device string, sec int, metrics map[string]float64) ingclient.Reading {
	return ingclient.Reading{EventID: uuid.New(), DeviceID: device, TS: t0.Add(time.Duration(sec) * time.Second), Metrics: metrics}
}

func apply(t *testing.T, msgs []query.Message) int {
	t.Helper()
	n, err := proj.Apply(context.Background(), msgs)
	require.NoError(t, err)
	return n
}

var apiErr = testserver.APIError

func TestProjectionsAndReads(t *testing.T) {
	reset(t)
	ctx := context.Background()
	msgs := ingest(t,
		rd("dev-a", 1, map[string]float64{"temp": 20, "hum": 40}),
		rd("dev-b", 1, map[string]float64{"temp": 5}),
		rd("dev-a", 2, map[string]float64{"temp": 21}),
	)
	assert.Equal(t, 3, apply(t, msgs))

	l, err := cli.Latest(ctx, "dev-a")
	require.NoError(t, err)
	assert.Equal(t, int64(2), l.Version)
	assert.Equal(t, map[string]float64{"temp": 21, "hum": 40}, l.Metrics, "metrics keep their latest value")
	assert.True(t, l.LastTS.Equal(t0.Add(2*time.Second)))

	page, err := cli.Readings(ctx, "dev-a", client.ReadingsQuery{})
	require.NoError(t, err)
	require.Len(t, page.Readings, 3)
	assert.Nil(t, page.NextCursor)
	assert.Equal(t, []string{"hum", "temp", "temp"}, []string{page.Readings[0].Metric, page.Readings[1].Metric, page.Readings[2].Metric})
	assert.Equal(t, 21.0, page.Readings[2].Value)

	page, err = cli.Readings(ctx, "dev-a", client.ReadingsQuery{Metric: "temp", From: t0.Add(2 * time.Second)})
	require.NoError(t, err)
	require.Len(t, page.Readings, 1)
	assert.Equal(t, 21.0, page.Readings[0].Value)

	page, err = cli.Readings(ctx, "dev-a", client.ReadingsQuery{To: t0.Add(2 * time.Second)})
	require.NoError(t, err)
	assert.Len(t, page.Readings, 2, "to is exclusive")

	ev, err := cli.Events(ctx, "dev-a", client.Page{})
	require.NoError(t, err)
	require.Len(t, ev.Events, 2)
	assert.Equal(t, int64(1), ev.Events[0].Version)
	assert.Equal(t, "TelemetryReceived", ev.Events[1].Type)

	// Every response body matches its schema (contract check on the wire).
	assertBodiesMatch(t, map[string]string{
		"/query/v1/devices":                      contracts.DeviceList,
		"/query/v1/devices/dev-a/latest":         contracts.DeviceLatest,
		"/query/v1/devices/dev-a/readings":       contracts.ReadingsPage,
		"/query/v1/devices/dev-a/events":         contracts.EventsPage,
		"/query/v1/devices/ghost/latest":         contracts.ErrorBody,
		"/query/v1/devices?limit=0":              contracts.ErrorBody,
		"/query/v1/devices/dev-a/events?limit=1": contracts.EventsPage,
	})

	devs, err := cli.Devices(ctx, client.Page{})
	require.NoError(t, err)
	require.Len(t, devs.Devices, 2)
	assert.Equal(t, "dev-a", devs.Devices[0].DeviceID)
	assert.Equal(t, "dev-b", devs.Devices[1].DeviceID)
}

// assertBodiesMatch GETs each path and checks the response body against
// its schema (the contract check on the wire).
func assertBodiesMatch(t *testing.T, schemaOf map[string]string) {
	t.Helper()
	for path, schema := range schemaOf {
		resp, err := http.Get(baseURL + path)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.NoError(t, contracts.Default().Validate(schema, body), path)
	}
}

// walk reads pages from the first to the one without a next cursor and
// returns their items in order and how many pages there were.
func walk[T any](t *testing.T, page func(cursor string) ([]T, *string, error)) (all []T, pages int) {
	t.Helper()
	cursor := ""
	for {
		items, next, err := page(cursor)
		require.NoError(t, err)
		pages++
		all = append(all, items...)
		if next == nil {
			return all, pages
		}
		cursor = *next
	}
}

func TestRedeliveryIsANoOp(t *testing.T) {
	reset(t)
	msgs := ingest(t, rd("dev-a", 1, map[string]float64{"temp": 1}), rd("dev-a", 2, map[string]float64{"temp": 2}))
	assert.Equal(t, 2, apply(t, msgs))
	assert.Equal(t, 0, apply(t, msgs), "second delivery")
	assert.Equal(t, 0, apply(t, append([]query.Message{msgs[0]}, msgs[0])), "repeat inside one poll")
	var n int
	require.NoError(t, db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM readings").Scan(&n))
	assert.Equal(t, 2, n)
	l, err := cli.Latest(context.Background(), "dev-a")
	require.NoError(t, err)
	assert.Equal(t, 2.0, l.Metrics["temp"], "an old redelivered event does not roll latest back")
}

// An invalid message is named as permanent (for the DLQ) and nothing of
// the poll is applied; without it the rest applies.
func TestInvalidMessageIsPermanent(t *testing.T) {
	reset(t)
	msgs := ingest(t, rd("dev-a", 1, map[string]float64{"temp": 1}))
	bad := query.Message{Value: []byte(`{"event_id":"nope"}`)}
	_, err := proj.Apply(context.Background(), []query.Message{msgs[0], bad})
	var perm *kafkax.PermanentError
	require.ErrorAs(t, err, &perm)
	assert.Equal(t, 1, perm.Index)
	assert.Equal(t, 1, apply(t, msgs))
}

func TestPagination(t *testing.T) {
	reset(t)
	ctx := context.Background()
	var rs []ingclient.Reading
	for i := 0; i < 5; i++ {
		rs = append(rs, rd(fmt.Sprintf("dev-%d", i), i, map[string]float64{"x": 1}))
	}
	for i := 0; i < 25; i++ {
		rs = append(rs, rd("dev-p", i, map[string]float64{"temp": float64(i)}))
	}
	apply(t, ingest(t, rs...))

	ids, pages := walk(t, func(cursor string) ([]string, *string, error) {
		p, err := cli.Devices(ctx, client.Page{Limit: 2, Cursor: cursor})
		var ids []string
		for _, d := range p.Devices {
			ids = append(ids, d.DeviceID)
		}
		return ids, p.NextCursor, err
	})
	assert.Equal(t, 3, pages)
	assert.Equal(t, []string{"dev-0", "dev-1", "dev-2", "dev-3", "dev-4", "dev-p"}, ids)

	vals, pages := walk(t, func(cursor string) ([]float64, *string, error) {
		p, err := cli.Readings(ctx, "dev-p", client.ReadingsQuery{Page: client.Page{Limit: 10, Cursor: cursor}})
		var vals []float64
		for _, r := range p.Readings {
			vals = append(vals, r.Value)
		}
		return vals, p.NextCursor, err
	})
	assert.Equal(t, 3, pages)
	require.Len(t, vals, 25)
	assert.True(t, sort.Float64sAreSorted(vals), "time order across pages")

	versions, _ := walk(t, func(cursor string) ([]int64, *string, error) {
		p, err := cli.Events(ctx, "dev-p", client.Page{Limit: 7, Cursor: cursor})
		var versions []int64
		for _, e := range p.Events {
			versions = append(versions, e.Version)
		}
		return versions, p.NextCursor, err
	})
	require.Len(t, versions, 25)
	for i, v := range versions {
		assert.Equal(t, int64(i+1), v)
	}
}

func TestUnknownDeviceIs404(t *testing.T) {
	reset(t)
	ctx := context.Background()
	_, err := cli.Latest(ctx, "ghost")
	apiErr(t, err, 404, "not_found")
	_, err = cli.Readings(ctx, "ghost", client.ReadingsQuery{})
	apiErr(t, err, 404, "not_found")
	_, err = cli.Events(ctx, "ghost", client.Page{})
	apiErr(t, err, 404, "not_found")
}

func TestBadParametersAreNamed(t *testing.T) {
	reset(t)
	ctx := context.Background()
	apply(t, ingest(t, rd("dev-a", 1, map[string]float64{"temp": 1})))
	fields := func(ae *client.Error) []string {
		var out []string
		for _, d := range ae.Details {
			out = append(out, d.Field)
		}
		sort.Strings(out)
		return out
	}
	_, err := cli.ReadingsRaw(ctx, "dev-a", url.Values{"limit": {"0"}, "from": {"yesterday"}, "cursor": {"%%%"}, "color": {"red"}})
	ae := apiErr(t, err, 400, "invalid_parameter")
	assert.Equal(t, []string{"color", "cursor", "from", "limit"}, fields(ae))

	_, err = cli.ReadingsRaw(ctx, "dev-a", url.Values{"from": {"2026-01-02T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}})
	ae = apiErr(t, err, 400, "invalid_parameter")
	assert.Equal(t, []string{"from", "to"}, fields(ae))

	_, err = cli.ReadingsRaw(ctx, "dev-a", url.Values{"metric": {"a b"}})
	apiErr(t, err, 400, "invalid_parameter")

	_, err = cli.Devices(ctx, client.Page{Limit: 5000})
	ae = apiErr(t, err, 400, "invalid_parameter")
	assert.Equal(t, []string{"limit"}, fields(ae))

	_, err = cli.Latest(ctx, "bad+id")
	apiErr(t, err, 400, "invalid_parameter")
}

func TestAnomaliesList(t *testing.T) {
	reset(t)
	require.NoError(t, db.Truncate(context.Background(), "anomalies"))
	ctx := context.Background()
	ingest(t, rd("dev-a", 1, map[string]float64{"temp": 1}))
	for i := range 5 {
		metric := "temperature"
		if i == 2 {
			metric = "humidity"
		}
		_, err := db.Pool.Exec(ctx, `
			INSERT INTO anomalies (event_id, device_id, metric, ts, value, score, reading_event_id, model_name, model_version, detected_at)
			VALUES ($1, 'dev-a', $2, $3, $4, 9.5, $5, 'robust-zscore', '1.0.0', now())`,
			uuid.New(), metric, t0.Add(time.Duration(10-i)*time.Second), float64(90+i), uuid.New())
		require.NoError(t, err)
	}
	page, err := cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Page: client.Page{Limit: 2}})
	require.NoError(t, err)
	require.Len(t, page.Anomalies, 2)
	require.NotNil(t, page.NextCursor)
	assert.Equal(t, 94.0, page.Anomalies[0].Value, "ordered by ts")
	assert.Equal(t, "robust-zscore", page.Anomalies[0].Model.Name)
	var all []client.Anomaly
	all = append(all, page.Anomalies...)
	for page.NextCursor != nil {
		page, err = cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Page: client.Page{Limit: 2, Cursor: *page.NextCursor}})
		require.NoError(t, err)
		all = append(all, page.Anomalies...)
	}
	require.Len(t, all, 5)
	for i := 1; i < len(all); i++ {
		assert.True(t, all[i].TS.After(all[i-1].TS))
	}
	hum, err := cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Metric: "humidity"})
	require.NoError(t, err)
	require.Len(t, hum.Anomalies, 1)
	assert.Equal(t, 92.0, hum.Anomalies[0].Value)

	assertBodiesMatch(t, map[string]string{
		"/query/v1/devices/dev-a/anomalies":                contracts.AnomalyList,
		"/query/v1/devices/dev-a/anomalies?limit=1":        contracts.AnomalyList,
		"/query/v1/devices/ghost/anomalies":                contracts.ErrorBody,
		"/query/v1/devices/dev-a/anomalies?metric=a%20b":   contracts.ErrorBody,
		"/query/v1/devices/dev-a/anomalies?cursor=zz":      contracts.ErrorBody,
		"/query/v1/devices/dev-a/anomalies?from=2026-01-1": contracts.ErrorBody,
	})
	_, err = cli.Anomalies(ctx, "ghost", client.AnomaliesQuery{})
	apiErr(t, err, http.StatusNotFound, "not_found")
	_, err = cli.Anomalies(ctx, "dev-a", client.AnomaliesQuery{Metric: "a b"})
	ae := apiErr(t, err, http.StatusBadRequest, "invalid_parameter")
	assert.Equal(t, "metric", ae.Details[0].Field)
}

// The database restarted under the pool's recently used connection (kill -9
// of PostgreSQL, then `inv up`): the next read does not fail on it.
func TestReadSurvivesABrokenPooledConnection(t *testing.T) {
	reset(t)
	ctx := context.Background()
	apply(t, ingest(t, rd("dev-r", 1, map[string]float64{"temp": 1})))
	pool, err := postgres.Connect(ctx, db.DSN, 1) // one connection: the next read must use it
	require.NoError(t, err)
	defer pool.Close()
	url, stop, err := testserver.Start(query.New(query.Deps{Pool: pool, Validator: contracts.Default(), Log: log}).Handler(nil), log)
	require.NoError(t, err)
	defer stop()
	q := client.New(url, nil)
	var pid int
	require.NoError(t, pool.QueryRow(ctx, `SELECT pg_backend_pid()`).Scan(&pid))
	_, err = db.Pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, pid)
	require.NoError(t, err)

	page, err := q.Readings(ctx, "dev-r", client.ReadingsQuery{})
	require.NoError(t, err, "read again on a live connection")
	assert.Len(t, page.Readings, 1)
}
