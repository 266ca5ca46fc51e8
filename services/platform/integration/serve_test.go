//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	actclient "platform/actions/client"
	"platform/ingestion"
	ingclient "platform/ingestion/client"
	"platform/internal/app"
	"platform/internal/config"
	"platform/internal/mqttx"
	"platform/internal/testdb"
	qclient "platform/query/client"
)

// The whole binary's wiring (app.Serve) on real PostgreSQL, Kafka and MQTT:
// HTTP and MQTT telemetry reach the query API, an invalid MQTT payload
// reaches the DLQ topic, a command goes out on MQTT and its ack comes back,
// and a cancelled context stops everything within the shutdown timeout.
func TestServeEndToEnd(t *testing.T) {
	ctx := context.Background()
	c, ing, stop := serveApp(t, "e2e")
	sfx := uuid.NewString()[:8]
	q := qclient.New("http://"+c.ListenAddrs(c.QueryPort)[0], nil)
	act := actclient.New("http://"+c.ListenAddrs(c.ActionsPort)[0], nil)

	// A device: publishes telemetry, receives commands, acks them.
	var mu sync.Mutex
	var commands []mqttx.Message
	dev := "e2e-dev-" + sfx
	device := mqttx.Connect(mqttx.Options{Broker: c.MQTTBroker(), ClientID: "dev-" + sfx, Log: log},
		[]mqttx.Subscription{{Filter: "devices/" + dev + "/commands", Handler: func(_ context.Context, m []mqttx.Message) error {
			mu.Lock()
			defer mu.Unlock()
			commands = append(commands, m...)
			return nil
		}}})
	defer device.Close(time.Second)
	require.Eventually(t, func() bool { return device.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond)

	// HTTP telemetry -> query API.
	_, err := ing.Ingest(ctx, []ingclient.Reading{{EventID: uuid.New(), DeviceID: dev, TS: time.Now().UTC(), Metrics: map[string]float64{"temp": 1}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { l, err := q.Latest(ctx, dev); return err == nil && l.Version == 1 }, 30*time.Second, 20*time.Millisecond)

	// MQTT telemetry -> query API (retried: the app's subscription may still be on its way).
	pubTelemetry := func(payload string) {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		require.NoError(t, device.Publish(pctx, "devices/"+dev+"/telemetry", []byte(payload)))
	}
	require.Eventually(t, func() bool {
		pubTelemetry(fmt.Sprintf(`{"event_id":%q,"ts":%q,"metrics":{"temp":2}}`, uuid.NewString(), time.Now().UTC().Format(time.RFC3339Nano)))
		l, err := q.Latest(ctx, dev)
		return err == nil && l.Version >= 2 && l.Metrics["temp"] == 2
	}, 30*time.Second, 500*time.Millisecond)

	// Invalid MQTT telemetry -> DLQ topic, with the original bytes.
	pubTelemetry(`{"not":"telemetry"}`)
	rd, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBroker()), kgo.ConsumeTopics(c.TopicTelemetryDLQ), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer rd.Close()
	var dl ingestion.DeadLetter
	require.Eventually(t, func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		for _, r := range rd.PollFetches(pctx).Records() {
			require.NoError(t, json.Unmarshal(r.Value, &dl))
			return true
		}
		return false
	}, 30*time.Second, 10*time.Millisecond)
	assert.Equal(t, "devices/"+dev+"/telemetry", dl.Topic)
	assert.Equal(t, "eyJub3QiOiJ0ZWxlbWV0cnkifQ==", dl.PayloadBase64)

	// Command -> MQTT -> ack -> acknowledged.
	cid := uuid.New()
	cmd, created, err := act.Issue(ctx, dev, actclient.CommandRequest{CommandID: cid, Name: "reboot"})
	require.NoError(t, err)
	require.True(t, created)
	require.Equal(t, actclient.StatusIssued, cmd.Status)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(commands) == 1 }, 30*time.Second, 10*time.Millisecond)
	mu.Lock()
	assert.Contains(t, string(commands[0].Payload), cid.String())
	mu.Unlock()
	require.Eventually(t, func() bool {
		c, err := act.Get(ctx, cid.String())
		return err == nil && c.Status == actclient.StatusSent
	}, 10*time.Second, 10*time.Millisecond)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	require.NoError(t, device.Publish(pctx, "devices/"+dev+"/commands/ack", []byte(fmt.Sprintf(`{"command_id":%q,"result":"ok"}`, cid))))
	cancel()
	require.Eventually(t, func() bool {
		c, err := act.Get(ctx, cid.String())
		return err == nil && c.Status == actclient.StatusAcknowledged
	}, 30*time.Second, 10*time.Millisecond)

	// Graceful stop within SHUTDOWN_TIMEOUT.
	require.NoError(t, stop())
}

// serveApp runs the whole binary's wiring (app.Serve) on this package's
// database, with topics, consumer groups and ports of its own (named after
// prefix), and waits for ingestion's /readyz. stop cancels it and returns
// Serve's error, or a timeout past SHUTDOWN_TIMEOUT; the test's cleanup
// calls it too. tweaks change the settings before it starts.
func serveApp(t *testing.T, prefix string, tweaks ...func(*config.Config)) (c config.Config, ing *ingclient.Client, stop func() error) {
	t.Helper()
	c, err := testdb.Config()
	require.NoError(t, err)
	c.PostgresDB = db.Name
	sfx := uuid.NewString()[:8]
	c.TopicTelemetry, c.TopicTelemetryDLQ, c.TopicAnomalies = prefix+"-t-"+sfx, prefix+"-dlq-"+sfx, prefix+"-a-"+sfx
	c.QueryConsumerGroup, c.MQTTClientID = prefix+"-"+sfx, prefix+"-"+sfx
	c.AnomalyConsumerGroup, c.ActionsConsumerGroup = prefix+"-det-"+sfx, prefix+"-act-"+sfx
	ports := freeTCPPorts(t, 3)
	c.IngestionPort, c.QueryPort, c.ActionsPort = ports[0], ports[1], ports[2]
	for _, tweak := range tweaks {
		tweak(&c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, c, log) }()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(c.ShutdownTimeout + 2*time.Second):
			return errors.New("Serve did not return within the shutdown timeout")
		}
	})
	t.Cleanup(func() { _ = stop() })
	ing = ingclient.New("http://"+c.ListenAddrs(c.IngestionPort)[0], nil)
	require.Eventually(t, func() bool { _, err := ing.Ready(ctx); return err == nil }, 30*time.Second, 50*time.Millisecond, "ingestion /readyz")
	return c, ing, stop
}

// freeTCPPorts returns n ports that were free a moment ago.
func freeTCPPorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}
