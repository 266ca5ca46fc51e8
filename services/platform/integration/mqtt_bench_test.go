//go:build integration && bench

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"platform/ingestion"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/mqttx"
)

// MQTT intake into the event store over one broker connection: devices
// publish QoS 1 as fast as the broker takes them; the figure is readings/s
// from the first publish until the last reading is committed, and how full
// the batches were (MaxBatch 500, the app's).
func TestBenchMQTTIntake(t *testing.T) {
	const n, devices, maxBatch = 20000, 200, 500
	ctx := context.Background()
	sfx := uuid.NewString()[:8]
	var mu sync.Mutex
	var sizes []int
	h := ingestion.New(ingestion.Deps{Events: eventstore.New(db.Pool), Topic: "bench-mqtt-" + sfx, Validator: contracts.Default(), Log: log}).Subscription().Handler
	sub := mqttx.Connect(mqttx.Options{Broker: cfg.MQTTBroker(), ClientID: "bench-intake-" + sfx, Log: log},
		[]mqttx.Subscription{{Filter: "bench-" + sfx + "/+/telemetry", MaxBatch: maxBatch, Handler: func(ctx context.Context, msgs []mqttx.Message) error {
			mu.Lock()
			sizes = append(sizes, len(msgs))
			mu.Unlock()
			return h(ctx, rewrite(msgs))
		}}})
	defer sub.Close(2 * time.Second)
	require.Eventually(t, func() bool { return sub.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond)

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(cfg.MQTTBroker()).SetClientID("bench-pub-" + sfx))
	require.True(t, pub.Connect().WaitTimeout(10*time.Second))
	defer pub.Disconnect(100)
	// The subscription is made by the connect handler: wait for its SUBACK by a probe message.
	probe := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(sizes) > 0
	}
	require.Eventually(t, func() bool {
		b, _ := json.Marshal(map[string]any{"event_id": uuid.NewString(), "ts": time.Now().UTC(), "metrics": map[string]float64{"temp": 20}})
		pub.Publish(fmt.Sprintf("bench-%s/probe-%s/telemetry", sfx, sfx), 1, false, b).Wait()
		return probe()
	}, 10*time.Second, 100*time.Millisecond, "subscription active")
	mu.Lock()
	sizes = nil
	mu.Unlock()

	start := time.Now()
	now := time.Now().UTC()
	tokens := make([]mqtt.Token, n)
	for i := range n {
		b, _ := json.Marshal(map[string]any{"event_id": uuid.NewString(), "ts": now.Add(time.Duration(i) * time.Millisecond), "metrics": map[string]float64{"temp": 20}})
		tokens[i] = pub.Publish(fmt.Sprintf("bench-%s/b%s-%d/telemetry", sfx, sfx, i%devices), 1, false, b)
	}
	for _, tok := range tokens {
		require.True(t, tok.WaitTimeout(60*time.Second))
	}
	published := time.Since(start)
	require.Eventually(t, func() bool {
		var c int
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM events WHERE stream_id LIKE $1`, "b"+sfx+"-%").Scan(&c)
		return c == n
	}, 120*time.Second, 20*time.Millisecond)
	took := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	full, total := 0, 0
	for _, s := range sizes {
		total += s
		if s == maxBatch {
			full++
		}
	}
	t.Logf("MQTT intake, one connection: %d readings in %s = %.0f readings/s (published in %s); %d batches, mean %.0f, %d full (%d)",
		n, took.Round(time.Millisecond), float64(n)/took.Seconds(), published.Round(time.Millisecond), len(sizes), float64(total)/float64(len(sizes)), full, maxBatch)
}

// rewrite maps the benchmark's topic prefix onto devices/{id}/telemetry,
// the shape the handler takes the device id from.
func rewrite(msgs []mqttx.Message) []mqttx.Message {
	out := make([]mqttx.Message, len(msgs))
	for i, m := range msgs {
		out[i] = mqttx.Message{Topic: "devices/" + mqttx.TopicLevel(m.Topic, 1) + "/telemetry", Payload: m.Payload}
	}
	return out
}
