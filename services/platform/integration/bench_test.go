//go:build integration && bench

package integration

// Benchmarks recorded in docs/benchmarks.md. Run (real PostgreSQL, Kafka
// and MQTT broker from the POSTGRES_*/KAFKA_*/MQTT_* settings):
//
//	go test -tags integration,bench -run 'TestBench' -v -count=1 -timeout 10m ./integration/

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"platform/actions"
	actclient "platform/actions/client"
	"platform/ingestion"
	ingclient "platform/ingestion/client"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/kafkax"
	"platform/internal/mqttx"
	"platform/internal/testserver"
	qclient "platform/query/client"
)

func batch(n, devices int, prefix string) []ingclient.Reading {
	rs := make([]ingclient.Reading, n)
	now := time.Now().UTC()
	for i := range rs {
		rs[i] = ingclient.Reading{
			EventID:  uuid.New(),
			DeviceID: fmt.Sprintf("%s-%d", prefix, i%devices),
			TS:       now.Add(time.Duration(i) * time.Millisecond),
			Metrics:  map[string]float64{"temp": 20 + float64(i%10), "hum": 40, "rpm": float64(i)},
		}
	}
	return rs
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// HTTP ingest of 1000-reading batches to durable (events committed)
// versus raw pgx CopyFrom of the same rows into a bare table, with the same
// number of concurrent clients. Two device layouts: each client owns its
// devices (the expected shape: a gateway per client), and every client
// writes the same 100 devices (worst case: per-device stream locks serialize
// the transactions).
func TestBenchIngestVersusCopyFrom(t *testing.T) {
	for _, sc := range []struct {
		name    string
		workers int
		shared  bool
		http    bool
	}{
		{"storage path alone, 1 client", 1, false, false},
		{"1 client", 1, false, true},
		{"4 clients, own devices", 4, false, true},
		{"4 clients, shared devices", 4, true, true},
	} {
		t.Run(sc.name, func(t *testing.T) { benchIngest(t, sc.workers, sc.shared, sc.http) })
	}
}

// benchIngest measures HTTP ingest, or with viaHTTP false the storage path
// alone (Service.Ingest called directly: no HTTP, JSON or validation).
func benchIngest(t *testing.T, workers int, shared, viaHTTP bool) {
	ctx := context.Background()
	const rounds, batches, size = 3, 60, 1000
	events := eventstore.New(db.Pool)
	svc := ingestion.NewService(events, "telemetry.v1")
	srv := ingestion.New(ingestion.Deps{Events: events, Topic: "telemetry.v1", Validator: contracts.Default(), Log: log})
	url, stop, err := testserver.Start(srv.Handler(nil), log)
	require.NoError(t, err)
	defer stop()
	cli := ingclient.New(url, &http.Client{Timeout: time.Minute})
	ingest := func(rs []ingclient.Reading) (int, error) {
		if !viaHTTP {
			res, err := svc.Ingest(ctx, rs)
			return res.Accepted, err
		}
		res, err := cli.Ingest(ctx, rs)
		return res.Accepted, err
	}

	// Batch i goes to worker i%workers, so "own devices" really are owned.
	run := func(fn func(i int) error) time.Duration {
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < batches; i += workers {
					require.NoError(t, fn(i))
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	// Rounds alternate the two measurements so that background load on the
	// machine hits both alike; the medians are reported.
	var httpRates, copyRates []float64
	for round := 0; round < rounds; round++ {
		require.NoError(t, db.Truncate(ctx, "events", "relay_cursors"))
		_, err := db.Pool.Exec(ctx, "VACUUM ANALYZE events")
		require.NoError(t, err)
		_, err = db.Pool.Exec(ctx, `DROP TABLE IF EXISTS bench_bare; CREATE TABLE bench_bare (event_id uuid, device_id text, ts timestamptz, metrics jsonb)`)
		require.NoError(t, err)
		data := make([][]ingclient.Reading, batches)
		for i := range data {
			prefix, devices := "bench", 100
			if !shared {
				prefix, devices = fmt.Sprintf("bench-w%d", i%workers), 100/workers
			}
			data[i] = batch(size, devices, prefix)
		}
		_, err = ingest(batch(size, 100, "warm")) // warm-up
		require.NoError(t, err)

		httpDur := run(func(i int) error {
			accepted, err := ingest(data[i])
			if err == nil && accepted != size {
				err = fmt.Errorf("accepted %d", accepted)
			}
			return err
		})
		copyDur := run(func(i int) error {
			_, err := db.Pool.CopyFrom(ctx, pgx.Identifier{"bench_bare"}, []string{"event_id", "device_id", "ts", "metrics"},
				pgx.CopyFromSlice(size, func(j int) ([]any, error) {
					r := data[i][j]
					return []any{r.EventID, r.DeviceID, r.TS, r.Metrics}, nil
				}))
			return err
		})
		total := float64(batches * size)
		httpRates = append(httpRates, total/httpDur.Seconds())
		copyRates = append(copyRates, total/copyDur.Seconds())
	}
	sort.Float64s(httpRates)
	sort.Float64s(copyRates)
	h, c := httpRates[rounds/2], copyRates[rounds/2]
	path := "http"
	if !viaHTTP {
		path = "storage"
	}
	t.Logf("BENCH ingest_%s_readings_per_s=%.0f copyfrom_bare_readings_per_s=%.0f ratio=%.2f (median of %d rounds; ingest %.0f..%.0f, copy %.0f..%.0f; batches=%d x %d, clients=%d, shared_devices=%v)",
		path, h, c, h/c, rounds, httpRates[0], httpRates[rounds-1], copyRates[0], copyRates[rounds-1], batches, size, workers, shared)
}

// Event store -> Kafka publish latency (ingest transaction start -> broker
// ack) while ingesting 1000 readings/s in batches of 100.
func TestBenchEventRelayToKafkaLatency(t *testing.T) {
	ctx := context.Background()
	require.NoError(t, db.Truncate(ctx, "events", "relay_cursors"))
	prod := producer(t)
	topic := uniqueTopic(t, prod)
	events := eventstore.New(db.Pool)
	svc := ingestion.NewService(events, topic)
	var mu sync.Mutex
	var lat []time.Duration
	relay, err := eventstore.NewRelay(db.Pool, kafkax.Publisher{Client: prod}, eventstore.RelayConfig{
		Wake: events.Published(),
		Observe: func(m eventstore.Message, acked time.Time) {
			mu.Lock()
			lat = append(lat, acked.Sub(m.RecordedAt))
			mu.Unlock()
		},
	}, log)
	require.NoError(t, err)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = relay.Run(rctx); close(done) }()

	const seconds, perSecond, size = 10, 1000, 100
	tick := time.NewTicker(time.Second * size / perSecond)
	for i := 0; i < seconds*perSecond/size; i++ {
		<-tick.C
		_, err := svc.Ingest(ctx, batch(size, 20, "lat"))
		require.NoError(t, err)
	}
	tick.Stop()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) == seconds*perSecond }, 30*time.Second, 10*time.Millisecond)
	stop()
	<-done
	t.Logf("BENCH event_relay_kafka_ack n=%d p50=%s p95=%s p99=%s max=%s", len(lat), pct(lat, .5), pct(lat, .95), pct(lat, .99), pct(lat, 1))
}

// Command outbox -> MQTT publish latency (Service.Issue called -> the
// broker's PUBACK) while issuing 100 commands/s, one at a time: the command
// relay woken by the outbox's NOTIFY.
func TestBenchCommandRelayToMQTTLatency(t *testing.T) {
	ctx := context.Background()
	require.NoError(t, db.Truncate(ctx, "outbox", "commands"))
	mq := mqttx.Connect(mqttx.Options{Broker: cfg.MQTTBroker(), ClientID: "bench-cmd-" + uuid.NewString()[:8], Log: log}, nil)
	defer mq.Close(time.Second)
	require.Eventually(t, func() bool { return mq.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond)
	srv := actions.New(actions.Deps{Pool: db.Pool, Events: eventstore.New(db.Pool), Validator: contracts.Default(), Log: log})
	var mu sync.Mutex
	issued := map[string]time.Time{}
	var lat []time.Duration
	relay, err := srv.CommandRelay(timedMQTT{mq, func(payload []byte) {
		acked := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for id, at := range issued {
			if strings.Contains(string(payload), id) {
				lat = append(lat, acked.Sub(at))
				delete(issued, id)
			}
		}
	}})
	require.NoError(t, err)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = relay.Run(rctx); close(done) }()

	const seconds, perSecond = 10, 100
	tick := time.NewTicker(time.Second / perSecond)
	for range seconds * perSecond {
		<-tick.C
		id := uuid.New()
		mu.Lock()
		issued[id.String()] = time.Now()
		mu.Unlock()
		_, _, err := srv.Service().Issue(ctx, "bench-cmd", actclient.CommandRequest{CommandID: id, Name: "ping"})
		require.NoError(t, err)
	}
	tick.Stop()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(lat) == seconds*perSecond }, 30*time.Second, 10*time.Millisecond)
	stop()
	<-done
	t.Logf("BENCH command_relay_mqtt_puback n=%d p50=%s p95=%s p99=%s max=%s", len(lat), pct(lat, .5), pct(lat, .95), pct(lat, .99), pct(lat, 1))
}

// timedMQTT publishes through the MQTT session and reports each PUBACK.
type timedMQTT struct {
	mq    *mqttx.Client
	acked func(payload []byte)
}

func (p timedMQTT) Publish(ctx context.Context, topic string, payload []byte) error {
	err := p.mq.Publish(ctx, topic, payload)
	if err == nil {
		p.acked(payload)
	}
	return err
}

// Ingest (HTTP) -> visible through the query API (HTTP), whole app in
// process with real Kafka and MQTT: 1000 readings/s in batches of 100, one
// device per batch; a batch is visible when /latest shows its last version.
func TestBenchIngestToQueryVisible(t *testing.T) {
	ctx := context.Background()
	c, ing, _ := serveApp(t, "bench")
	suffix := uuid.NewString()[:8]
	q := qclient.New("http://"+c.ListenAddrs(c.QueryPort)[0], nil)
	// Warm up the pipeline (topic creation, group join).
	warm := batch(10, 1, "warm-"+suffix)
	_, err := ing.Ingest(ctx, warm)
	require.NoError(t, err)
	require.Eventually(t, func() bool { _, err := q.Latest(ctx, warm[0].DeviceID); return err == nil }, 60*time.Second, 20*time.Millisecond)

	const seconds, perSecond, size = 10, 1000, 100
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second * size / perSecond)
	for i := 0; i < seconds*perSecond/size; i++ {
		<-tick.C
		dev := "vis-" + suffix + "-" + strconv.Itoa(i)
		rs := batch(size, 1, dev)
		start := time.Now()
		_, err := ing.Ingest(ctx, rs)
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.NewTimer(30 * time.Second)
			defer deadline.Stop()
			probe := time.NewTicker(5 * time.Millisecond)
			defer probe.Stop()
			for {
				l, err := q.Latest(ctx, rs[0].DeviceID)
				if err == nil && l.Version >= size {
					mu.Lock()
					lat = append(lat, time.Since(start))
					mu.Unlock()
					return
				}
				select {
				case <-probe.C:
				case <-deadline.C:
					return
				}
			}
		}()
	}
	tick.Stop()
	wg.Wait()
	require.Len(t, lat, seconds*perSecond/size, "every batch became visible within 30s")
	t.Logf("BENCH ingest_to_query_visible batches=%d p50=%s p95=%s p99=%s max=%s", len(lat), pct(lat, .5), pct(lat, .95), pct(lat, .99), pct(lat, 1))
}
