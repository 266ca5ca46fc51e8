//go:build component

package ingestion_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"platform/ingestion"
	"platform/ingestion/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/httpx"
	"platform/internal/testserver"
)

// TestIngestGivesUpAtItsBoundAndStoresNothing: a request that waits on the
// database longer than its bound (here for the events table, which another
// transaction holds locked, as a stalled database holds every request)
// answers 503 with Retry-After and stores nothing; the client's retry with
// the same event ids then stores the batch once.
func TestIngestGivesUpAtItsBoundAndStoresNothing(t *testing.T) {
	reset(t)
	ctx := context.Background()
	const bound = 300 * time.Millisecond
	srv := ingestion.New(ingestion.Deps{Events: eventstore.New(db.Pool), Topic: "telemetry.v1", Validator: contracts.Default(), Log: log})
	url, stop, err := testserver.Start(httpx.Bound(bound, srv.Handler(nil)), log)
	require.NoError(t, err)
	defer stop()

	lock, err := db.Pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = lock.Rollback(ctx) }()
	_, err = lock.Exec(ctx, `LOCK TABLE events IN ACCESS EXCLUSIVE MODE`)
	require.NoError(t, err)

	batch := []client.Reading{reading("dev-bound", 1), reading("dev-bound", 2)}
	body, err := json.Marshal(client.Batch{Readings: batch})
	require.NoError(t, err)
	started := time.Now()
	resp, err := http.Post(url+"/ingest/v1/telemetry", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	took := time.Since(started)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, httpx.RetryAfter, resp.Header.Get("Retry-After"))
	assert.GreaterOrEqual(t, took, bound)
	assert.Less(t, took, bound+5*time.Second, "answered at its bound, not when the lock went")

	require.NoError(t, lock.Rollback(ctx))
	res, err := cli.Ingest(ctx, batch)
	require.NoError(t, err)
	assert.Equal(t, client.IngestResponse{Accepted: 2}, res, "the 503 stored nothing")
	assert.Equal(t, 2, db.Count(t, "events"))
}
