//go:build integration && bench

package integration

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	ingclient "platform/ingestion/client"
	"platform/internal/config"
)

// HTTP ingest of the whole monolith (app.Serve on real PostgreSQL, Kafka
// and MQTT) with tracing off, on (spans posted to a Zipkin v2 intake; every
// trace sampled, then 1 in 10) and on with a viewer that takes 3 s per
// POST, in the same run, rounds interleaved; prints readings/s, the ratios
// to off and the spans exported and dropped during the timed batches.
// docs/benchmarks.md records the figures (scripts/bench_tracing.py).
func TestBenchIngestTracing(t *testing.T) {
	sink := httptest.NewServer(&spanSink{})
	defer sink.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	setups := []struct {
		name  string
		url   string
		ratio float64
	}{
		{"off", "", 1},
		{"on, viewer up", sink.URL + "/api/v2/spans", 1},
		{"on, ratio 0.1, viewer up", sink.URL + "/api/v2/spans", 0.1},
		{"on, viewer slow (3 s per POST)", slow.URL + "/api/v2/spans", 1},
	}
	const clients, batches, rounds = 2, 20, 5
	rate := make([]float64, len(setups))
	counts := make([]ingclient.SpanCounts, len(setups)) // during the timed batches
	for round := range rounds {
		for i, s := range setups {
			_, ing, stop := serveApp(t, fmt.Sprintf("tb%d%d", round, i), func(c *config.Config) {
				c.TraceExportURL, c.TraceSampleRatio = s.url, s.ratio
			})
			ingest(t, ing, clients, 2, fmt.Sprintf("warm-%d-%d", round, i)) // connections, plans
			before := spanCounts(t, ing)
			start := time.Now()
			n := ingest(t, ing, clients, batches, fmt.Sprintf("b-%d-%d", round, i))
			rate[i] += float64(n) / time.Since(start).Seconds() / rounds
			after := spanCounts(t, ing)
			counts[i].Exported += after.Exported - before.Exported
			counts[i].Dropped += after.Dropped - before.Dropped
			require.NoError(t, stop())
		}
	}
	for i, s := range setups {
		fmt.Printf("BENCH tracing %-32s %8.0f readings/s  %.2fx of off  spans exported %d dropped %d (timed batches)\n",
			s.name, rate[i], rate[i]/rate[0], counts[i].Exported, counts[i].Dropped)
	}
}

// spanCounts are /readyz's tracing counts (the process's, since start).
func spanCounts(t *testing.T, ing *ingclient.Client) ingclient.SpanCounts {
	t.Helper()
	h, err := ing.Ready(context.Background())
	require.NoError(t, err)
	require.NotNil(t, h.Tracing, "/readyz has tracing")
	return *h.Tracing
}

// ingest posts batches 1000-reading batches from each of clients
// concurrent clients (own devices each) and returns the readings stored.
func ingest(t *testing.T, ing *ingclient.Client, clients, batches int, prefix string) int {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				if _, err := ing.Ingest(context.Background(), batch(1000, 10, fmt.Sprintf("%s-%d-%d", prefix, w, b))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(t, <-errs)
	return clients * batches * 1000
}
