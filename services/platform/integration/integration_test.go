//go:build integration

// Package integration runs the adapters against the real brokers: the
// Kafka outbox relay, the query consumer and the MQTT session. Addresses come
// from KAFKA_*, MQTT_* and POSTGRES_*; an unreachable one fails the run.
package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"platform/ingestion"
	ingclient "platform/ingestion/client"
	"platform/internal/config"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/kafkax"
	"platform/internal/mqttx"
	"platform/internal/relay"
	"platform/internal/testdb"
	"platform/query"
)

var (
	db  *testdb.DB
	cfg config.Config
	log = slog.New(slog.DiscardHandler)
)

func TestMain(m *testing.M) {
	var err error
	if cfg, err = testdb.Config(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: "+err.Error())
		os.Exit(1)
	}
	for _, dep := range []struct{ what, addr, comp string }{
		{"Kafka", cfg.KafkaBroker(), "kafka"},
		{"MQTT broker", cfg.MQTTBroker()[len("tcp://"):], "mqtt"},
	} {
		if err := testdb.Reachable(dep.what, dep.addr, dep.comp); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: "+err.Error())
			os.Exit(1)
		}
	}
	testdb.Run(m, "integration", &db)
}

func uniqueTopic(t *testing.T, cl *kgo.Client) string {
	t.Helper()
	topic := "it-" + uuid.NewString()[:8]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, kafkax.EnsureTopics(ctx, cl, 3, topic))
	require.NoError(t, kafkax.EnsureTopics(ctx, cl, 3, topic), "idempotent")
	t.Cleanup(func() { _, _ = kadm.NewClient(cl).DeleteTopics(context.Background(), topic) })
	return topic
}

func producer(t *testing.T) *kgo.Client {
	t.Helper()
	cl, err := kafkax.NewProducer([]string{cfg.KafkaBroker()}, 20*time.Second)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// Ingest -> event store -> relay -> real Kafka -> consumer: every event once,
// keyed by device, in version order per device.
func TestRelayToKafkaAndQueryConsumer(t *testing.T) {
	ctx := context.Background()
	prod := producer(t)
	topic := uniqueTopic(t, prod)
	require.NoError(t, db.Truncate(ctx, "events", "relay_cursors", "readings", "device_latest", "processed_messages"))

	svc := ingestion.NewService(eventstore.New(db.Pool), topic)
	var rs []ingclient.Reading
	for i := 0; i < 300; i++ {
		rs = append(rs, ingclient.Reading{EventID: uuid.New(), DeviceID: fmt.Sprintf("it-%d", i%7), TS: time.Now().UTC(), Metrics: map[string]float64{"v": float64(i)}})
	}
	_, err := svc.Ingest(ctx, rs)
	require.NoError(t, err)

	relay, err := eventstore.NewRelay(db.Pool, kafkax.Publisher{Client: prod}, eventstore.RelayConfig{Timing: relay.Timing{BatchSize: 100}}, log)
	require.NoError(t, err)
	rctx, stopRelay := context.WithCancel(ctx)
	relayDone := make(chan struct{})
	go func() { _ = relay.Run(rctx); close(relayDone) }()
	defer func() { stopRelay(); <-relayDone }()

	group := "it-" + uuid.NewString()[:8]
	cons, err := kafkax.NewGroupConsumer([]string{cfg.KafkaBroker()}, group, topic, "it-query")
	require.NoError(t, err)
	proj := query.New(query.Deps{Pool: db.Pool, Validator: contracts.Default(), Log: log}).Projector()
	cctx, stopCons := context.WithCancel(ctx)
	consDone := make(chan struct{})
	go func() { query.Consume(cctx, cons, prod, proj, nil, log); close(consDone) }()

	require.Eventually(t, func() bool {
		var n int
		_ = db.Pool.QueryRow(ctx, "SELECT count(*) FROM processed_messages").Scan(&n)
		return n == 300
	}, 60*time.Second, 50*time.Millisecond, "all 300 events projected")
	var unpublished, latest int
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT count(*) FROM events e JOIN relay_cursors c ON c.sink = 'kafka'
		WHERE e.topic IS NOT NULL AND (e.tx, e.seq) > (c.tx, c.seq)`).Scan(&unpublished))
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT count(*) FROM device_latest").Scan(&latest))
	assert.Equal(t, 0, unpublished, "the relay's cursor is past every event")
	assert.Equal(t, 7, latest)
	var v float64
	require.NoError(t, db.Pool.QueryRow(ctx, "SELECT (metrics->>'v')::float FROM device_latest WHERE device_id = 'it-0'").Scan(&v))
	assert.Equal(t, 294.0, v, "latest of it-0 is its last reading")

	stopCons()
	<-consDone
	cons.Close()

	// Offsets were committed: the group's lag is zero.
	adm := kadm.NewClient(prod)
	lags, err := adm.Lag(ctx, group)
	require.NoError(t, err)
	assert.Equal(t, int64(0), lags[group].Lag.Total())

	// Raw read: keys = device, per-device versions strictly increasing.
	rd, err := kgo.NewClient(kgo.SeedBrokers(cfg.KafkaBroker()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer rd.Close()
	last := map[string]int64{}
	seen := 0
	deadline := time.Now().Add(30 * time.Second)
	for seen < 300 && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		f := rd.PollFetches(pctx)
		cancel()
		f.EachRecord(func(r *kgo.Record) {
			var e ingestion.TelemetryEvent
			require.NoError(t, json.Unmarshal(r.Value, &e))
			assert.Equal(t, e.DeviceID, string(r.Key))
			assert.Equal(t, last[e.DeviceID]+1, e.Version)
			last[e.DeviceID] = e.Version
			seen++
		})
	}
	assert.Equal(t, 300, seen)
}

// The MQTT session: a device publish reaches the handler, a failing handler
// is retried (the message is not lost), and Publish waits for the PUBACK.
func TestMQTTSubscribeAndPublish(t *testing.T) {
	prefix := "it" + uuid.NewString()[:6]
	var mu sync.Mutex
	var got []mqttx.Message
	failOnce := true
	sub := mqttx.Connect(mqttx.Options{Broker: cfg.MQTTBroker(), ClientID: prefix + "-sub", Log: log},
		[]mqttx.Subscription{{Filter: prefix + "/+/telemetry", MaxBatch: 10, Handler: func(_ context.Context, msgs []mqttx.Message) error {
			mu.Lock()
			defer mu.Unlock()
			if failOnce {
				failOnce = false
				return fmt.Errorf("database down")
			}
			got = append(got, msgs...)
			return nil
		}}})
	defer sub.Close(2 * time.Second)
	pub := mqttx.Connect(mqttx.Options{Broker: cfg.MQTTBroker(), ClientID: prefix + "-pub", Log: log}, nil)
	defer pub.Close(2 * time.Second)
	require.Eventually(t, func() bool { return sub.Ping(context.Background()) == nil && pub.Ping(context.Background()) == nil }, 10*time.Second, 20*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.Eventually(t, func() bool {
		require.NoError(t, pub.Publish(ctx, prefix+"/dev-1/telemetry", []byte(`{"n":1}`)))
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	}, 10*time.Second, 300*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, prefix+"/dev-1/telemetry", got[0].Topic)
	assert.JSONEq(t, `{"n":1}`, string(got[0].Payload))
}
