//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	actclient "platform/actions/client"
	ingclient "platform/ingestion/client"
	"platform/internal/config"
	"platform/internal/kafkax"
	"platform/internal/mqttx"
	"platform/internal/tracing"
)

// zipkinSpan is the part of a Zipkin v2 span the test reads.
type zipkinSpan struct {
	TraceID       string `json:"traceId"`
	ID            string `json:"id"`
	ParentID      string `json:"parentId"`
	Name          string `json:"name"`
	LocalEndpoint struct {
		ServiceName string `json:"serviceName"`
	} `json:"localEndpoint"`
}

// spanSink is a trace viewer's intake: POST /api/v2/spans (Zipkin v2
// JSON), what the exporter sends to TRACE_EXPORT_URL.
type spanSink struct {
	mu    sync.Mutex
	spans []zipkinSpan
}

func (s *spanSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var got []zipkinSpan
	if r.Method != http.MethodPost || r.URL.Path != "/api/v2/spans" || json.NewDecoder(r.Body).Decode(&got) != nil {
		http.Error(w, "not a Zipkin v2 span list", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.spans = append(s.spans, got...)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// services are the service names of traceID's spans, and whether one of
// them is named name.
func (s *spanSink) services(traceID, name string) (map[string]bool, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out, named := map[string]bool{}, false
	for _, sp := range s.spans {
		if sp.TraceID == traceID {
			out[sp.LocalEndpoint.ServiceName] = true
			named = named || sp.Name == name
		}
	}
	return out, named
}

// withTraceparent sends every request with the header.
type withTraceparent string

func (h withTraceparent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", string(h))
	return http.DefaultTransport.RoundTrip(r)
}

// One reading's journey on real PostgreSQL, Kafka, Mosquitto and the AI
// service: a batch posted with a known traceparent, ending in a spike,
// yields spans of that trace from ingestion, the relay, the projector, the
// detector, actions and the command relay; its telemetry.v1 records carry
// the traceparent header, events.trace_context holds it, the MQTT command
// carries it, and the device's ack echoing it closes the trace in actions.
func TestOneReadingsTraceAcrossEveryHop(t *testing.T) {
	ctx := context.Background()
	sink := &spanSink{}
	viewer := httptest.NewServer(sink)
	defer viewer.Close()
	aiPort := freeTCPPorts(t, 1)[0]
	defer startInference(t, aiPort)()
	c, _, stop := serveApp(t, "trace", func(c *config.Config) {
		c.TraceExportURL, c.TraceSampleRatio, c.AIInferencePort = viewer.URL+"/api/v2/spans", 1, aiPort
	})
	const traceID = "5e1f6a7b8c9d0e1f2a3b4c5d6e7f8091"
	sent := "00-" + traceID + "-a1b2c3d4e5f60718-01"
	sfx := uuid.NewString()[:8]
	dev := "trace-dev-" + sfx

	var mu sync.Mutex
	var commands []mqttx.Message
	device := mqttx.Connect(mqttx.Options{Broker: c.MQTTBroker(), ClientID: "trace-" + sfx, Log: log},
		[]mqttx.Subscription{{Filter: "devices/" + dev + "/commands", Handler: func(_ context.Context, m []mqttx.Message) error {
			mu.Lock()
			defer mu.Unlock()
			commands = append(commands, m...)
			return nil
		}}})
	defer device.Close(time.Second)
	require.Eventually(t, func() bool { return device.Ping(ctx) == nil }, 10*time.Second, 20*time.Millisecond)

	// One batch, one device: 40 normal readings, then a spike.
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	readings := make([]ingclient.Reading, 41)
	for i := range readings {
		v := 20 + float64(i%3)*0.1
		if i == len(readings)-1 {
			v = 95
		}
		readings[i] = ingclient.Reading{EventID: uuid.New(), DeviceID: dev, TS: t0.Add(time.Duration(i) * time.Second), Metrics: map[string]float64{"temperature": v}}
	}
	ing := ingclient.New("http://"+c.ListenAddrs(c.IngestionPort)[0], &http.Client{Transport: withTraceparent(sent)})
	_, err := ing.Ingest(ctx, readings)
	require.NoError(t, err)
	spike := readings[len(readings)-1].EventID

	var stored string
	require.NoError(t, db.Pool.QueryRow(ctx, `SELECT trace_context FROM events WHERE event_id = $1`, spike).Scan(&stored))
	assert.Equal(t, traceID, tracing.Parse(stored).TraceID().String(), "events.trace_context: the request's trace")

	rd, err := kgo.NewClient(kgo.SeedBrokers(c.KafkaBroker()), kgo.ConsumeTopics(c.TopicTelemetry), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer rd.Close()
	var header string
	require.Eventually(t, func() bool {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		for _, r := range rd.PollFetches(pctx).Records() {
			header = kafkax.Traceparent(r)
			return true
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "a telemetry.v1 record")
	assert.Equal(t, traceID, tracing.Parse(header).TraceID().String(), "the record's traceparent header: %q", header)
	assert.NotEqual(t, tracing.Parse(stored).SpanID(), tracing.Parse(header).SpanID(), "the header is the relay's span, child of the stored one")

	// The spike's command carries the trace over MQTT.
	var command struct {
		CommandID   string `json:"command_id"`
		Traceparent string `json:"traceparent"`
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(commands) > 0 }, 60*time.Second, 20*time.Millisecond, "the spike's command on MQTT")
	mu.Lock()
	require.NoError(t, json.Unmarshal(commands[0].Payload, &command))
	mu.Unlock()
	assert.Equal(t, traceID, tracing.Parse(command.Traceparent).TraceID().String(), "the command's traceparent: %q", command.Traceparent)

	// The device echoes it in its ack: applying it is the trace's last span.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	require.NoError(t, device.Publish(pctx, "devices/"+dev+"/commands/ack",
		[]byte(fmt.Sprintf(`{"command_id":%q,"result":"ok","traceparent":%q}`, command.CommandID, command.Traceparent))))
	cancel()
	act := actclient.New("http://"+c.ListenAddrs(c.ActionsPort)[0], nil)
	require.Eventually(t, func() bool {
		cmd, err := act.Get(ctx, command.CommandID)
		return err == nil && cmd.Status == actclient.StatusAcknowledged
	}, 30*time.Second, 20*time.Millisecond)

	want := []string{"ingestion", "relay", "projector", "detector", "actions", "command-relay"}
	var got map[string]bool
	var acked bool
	require.Eventuallyf(t, func() bool {
		got, acked = sink.services(traceID, "apply command ack")
		for _, s := range want {
			if !got[s] {
				return false
			}
		}
		return acked
	}, 30*time.Second, 100*time.Millisecond, "spans of trace %s from %v and the ack's; got %v (ack: %v)", traceID, want, keys(got), acked)

	h, err := ing.Ready(ctx)
	require.NoError(t, err)
	require.NotNil(t, h.Tracing)
	assert.Positive(t, h.Tracing.Exported, "/readyz counts the spans exported")
	require.NoError(t, stop())
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
