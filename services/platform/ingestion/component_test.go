//go:build component

package ingestion_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/ingestion"
	"platform/ingestion/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/testdb"
	"platform/internal/testserver"
)

var (
	baseURL string
	db      *testdb.DB
	cli     *client.Client
	log     = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	testserver.Main(m, "ingestion", log, func(d *testdb.DB) http.Handler {
		db = d
		return ingestion.New(ingestion.Deps{Events: eventstore.New(db.Pool), Topic: "telemetry.v1", Validator: contracts.Default(), Log: log}).Handler(nil)
	}, func(url string) { baseURL, cli = url, client.New(url, nil) })
}

func reset(t *testing.T) {
	t.Helper()
	require.NoError(t, db.Truncate(context.Background(), "events", "relay_cursors"))
}

func reading(device string, i int) client.Reading {
	return client.Reading{
		EventID:  uuid.New(),
		DeviceID: device,
		TS:       time.Date(2026, 1, 1, 0, 0, i, 0, time.UTC),
		Metrics:  map[string]float64{"temp": float64(i), "rpm": 1000 + float64(i)},
	}
}

// published is what the event relay would send to the broker: every event
// with a topic since the last reset, in relay order.
type publishedEvent struct {
	Topic, Key string
	Event      ingestion.TelemetryEvent
	Raw        []byte
}

func published(t *testing.T) []publishedEvent {
	t.Helper()
	msgs, err := db.Published(context.Background())
	require.NoError(t, err)
	out := make([]publishedEvent, len(msgs))
	for i, m := range msgs {
		out[i] = publishedEvent{Topic: m.Topic, Key: m.Key, Raw: m.Value}
		require.NoError(t, json.Unmarshal(m.Value, &out[i].Event))
	}
	return out
}

var apiErr = testserver.APIError

func TestIngestStoresEventsForTheTelemetryTopic(t *testing.T) {
	reset(t)
	ctx := context.Background()
	in := []client.Reading{reading("dev-a", 1), reading("dev-b", 2), reading("dev-a", 3)}
	res, err := cli.Ingest(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, client.IngestResponse{Accepted: 3, Duplicates: 0}, res)
	resp, err := http.Post(baseURL+"/ingest/v1/telemetry", "application/json", strings.NewReader(`{"readings":[{"event_id":"`+in[0].EventID.String()+`","device_id":"dev-a","ts":"2026-01-01T00:00:01Z","metrics":{"temp":1}}]}`))
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, contracts.Default().Validate(contracts.IngestResponse, body))
	assert.JSONEq(t, `{"accepted":0,"duplicates":1}`, string(body))
	assert.Equal(t, 3, db.Count(t, "events"))

	rows := published(t)
	require.Len(t, rows, 3)
	for i, r := range rows {
		assert.Equal(t, "telemetry.v1", r.Topic)
		assert.Equal(t, in[i].DeviceID, r.Key)
		assert.Equal(t, in[i].EventID, r.Event.EventID)
		assert.Equal(t, in[i].Metrics, r.Event.Metrics)
		require.NoError(t, contracts.Default().Validate(contracts.TelemetryEvent, r.Raw))
	}
	assert.Equal(t, int64(1), rows[0].Event.Version)
	assert.Equal(t, int64(1), rows[1].Event.Version)
	assert.Equal(t, int64(2), rows[2].Event.Version)
}

func TestDuplicatesAreNoOps(t *testing.T) {
	reset(t)
	ctx := context.Background()
	in := []client.Reading{reading("dev-a", 1), reading("dev-a", 2)}
	_, err := cli.Ingest(ctx, in)
	require.NoError(t, err)

	res, err := cli.Ingest(ctx, append(in, reading("dev-a", 3), in[0]))
	require.NoError(t, err)
	assert.Equal(t, client.IngestResponse{Accepted: 1, Duplicates: 3}, res)
	assert.Equal(t, 3, db.Count(t, "events"))
	assert.Len(t, published(t), 3)
}

func TestRejectedBatchesWriteNothing(t *testing.T) {
	reset(t)
	ctx := context.Background()
	good := func() map[string]any {
		r := reading("dev-a", 1)
		return map[string]any{"event_id": r.EventID.String(), "device_id": r.DeviceID, "ts": "2026-01-01T00:00:00Z", "metrics": map[string]any{"t": 1}}
	}
	t.Run("malformed JSON", func(t *testing.T) {
		_, err := cli.IngestRaw(ctx, []byte(`{"readings":[{"event_id":`))
		apiErr(t, err, 400, "malformed_json")
	})
	t.Run("schema violations name each item", func(t *testing.T) {
		bad1, bad3 := good(), good()
		delete(bad1, "ts")
		bad3["metrics"] = map[string]any{"t": "hot"}
		body, _ := json.Marshal(map[string]any{"readings": []any{good(), bad1, good(), bad3}})
		_, err := cli.IngestRaw(ctx, body)
		ae := apiErr(t, err, 400, "invalid_body")
		resp, err := http.Post(baseURL+"/ingest/v1/telemetry", "application/json", strings.NewReader(string(body)))
		require.NoError(t, err)
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, contracts.Default().Validate(contracts.ErrorBody, raw))
		idx := map[int]bool{}
		for _, d := range ae.Details {
			require.NotNil(t, d.Index, d.Message)
			idx[*d.Index] = true
		}
		assert.Equal(t, map[int]bool{1: true, 3: true}, idx)
		assert.Contains(t, ae.Message, "2 reading(s)")
	})
	t.Run("empty batch", func(t *testing.T) {
		_, err := cli.IngestRaw(ctx, []byte(`{"readings":[]}`))
		apiErr(t, err, 400, "empty_batch")
	})
	t.Run("more than 1000 readings", func(t *testing.T) {
		rs := make([]client.Reading, 1001)
		for i := range rs {
			rs[i] = reading("d", i)
			rs[i].Metrics = map[string]float64{"t": 1}
		}
		_, err := cli.Ingest(ctx, rs)
		apiErr(t, err, 413, "too_large")
	})
	t.Run("body over 1 MiB", func(t *testing.T) {
		body := `{"readings":[{"pad":"` + strings.Repeat("x", 1<<20) + `"}]}`
		_, err := cli.IngestRaw(ctx, []byte(body))
		apiErr(t, err, 413, "too_large")
	})
	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, baseURL+"/ingest/v1/telemetry", strings.NewReader("a=b"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 415, resp.StatusCode)
	})
	assert.Equal(t, 0, db.Count(t, "events"))
	assert.Empty(t, published(t))
}

func TestPerDeviceOrderUnderConcurrency(t *testing.T) {
	reset(t)
	ctx := context.Background()
	const writers, batches, per = 4, 5, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers*batches)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; b < batches; b++ {
				rs := make([]client.Reading, per)
				for i := range rs {
					rs[i] = reading(fmt.Sprintf("dev-%d", i%3), w*1000+b*100+i)
				}
				if _, err := cli.Ingest(ctx, rs); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// Versions per device are 1..n without gaps, and the relay publishes
	// each device's events in version order.
	last := map[string]int64{}
	for _, r := range published(t) {
		assert.Equal(t, last[r.Key]+1, r.Event.Version, "device %s", r.Key)
		last[r.Key] = r.Event.Version
	}
	assert.Equal(t, writers*batches*per, db.Count(t, "events"))
}

func TestHealth(t *testing.T) {
	h, err := cli.Health(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "ok", h.Status)
	assert.Equal(t, "ingestion", h.Service)
}

func TestConcurrentDuplicatesAcrossRequests(t *testing.T) {
	reset(t)
	ctx := context.Background()
	rs := make([]client.Reading, 200)
	for i := range rs {
		rs[i] = reading(fmt.Sprintf("dev-%d", i%5), i)
	}
	const clients = 4
	results := make(chan client.IngestResponse, clients)
	errs := make(chan error, clients)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := cli.Ingest(ctx, rs)
			if err != nil {
				errs <- err
				return
			}
			results <- res
		}()
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	accepted, dups := 0, 0
	for r := range results {
		accepted += r.Accepted
		dups += r.Duplicates
	}
	assert.Equal(t, len(rs), accepted, "each reading stored exactly once")
	assert.Equal(t, (clients-1)*len(rs), dups)
	assert.Equal(t, len(rs), db.Count(t, "events"))
	assert.Len(t, published(t), len(rs))
}
