//go:build component

package query_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
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
