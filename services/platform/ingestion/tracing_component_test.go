//go:build component

package ingestion_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"platform/ingestion"
	"platform/internal/contracts"
	"platform/internal/eventstore"
	"platform/internal/mqttx"
	"platform/internal/testserver"
	"platform/internal/tracing"
)

const sentTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// keptSpans is an in-memory exporter whose spans outlive Shutdown.
type keptSpans struct{ *tracetest.InMemoryExporter }

func (keptSpans) Shutdown(context.Context) error { return nil }

func traced(t *testing.T) (*tracing.Tracing, keptSpans) {
	t.Helper()
	exp := keptSpans{tracetest.NewInMemoryExporter()}
	return tracing.WithExporter(exp, 1, tracing.QueueConfig{}), exp
}

// storedTrace is events.trace_context of the reading ("" when NULL).
func storedTrace(t *testing.T, id uuid.UUID) string {
	t.Helper()
	var tc *string
	require.NoError(t, db.Pool.QueryRow(context.Background(), `SELECT trace_context FROM events WHERE event_id = $1`, id).Scan(&tc))
	if tc == nil {
		return ""
	}
	return *tc
}

func postTraced(t *testing.T, url, traceparent string, ids ...uuid.UUID) {
	t.Helper()
	var items []string
	for i, id := range ids {
		items = append(items, `{"event_id":"`+id.String()+`","device_id":"dev-t","ts":"2026-01-01T00:00:0`+string(rune('0'+i))+`Z","metrics":{"temp":1}}`)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/ingest/v1/telemetry", strings.NewReader(`{"readings":[`+strings.Join(items, ",")+`]}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "a malformed traceparent never refuses a reading")
}

func TestHTTPReadingsKeepTheRequestsTraceContext(t *testing.T) {
	reset(t)
	traces, exp := traced(t)
	srv := ingestion.New(ingestion.Deps{Events: eventstore.New(db.Pool), Topic: "telemetry.v1", Validator: contracts.Default(), Tracing: traces, Log: log})
	url, stop, err := testserver.Start(traces.Handler(tracing.Ingestion, srv.Handler(nil)), log)
	require.NoError(t, err)
	defer stop()

	a, b := uuid.New(), uuid.New()
	postTraced(t, url, sentTraceparent, a, b)
	malformed := uuid.New()
	postTraced(t, url, "00-garbage-01", malformed)
	require.NoError(t, traces.Shutdown(context.Background()))

	sent := tracing.Parse(sentTraceparent)
	stored := tracing.Parse(storedTrace(t, a))
	require.True(t, stored.IsValid(), "a traceparent: %q", storedTrace(t, a))
	assert.Equal(t, sent.TraceID(), stored.TraceID(), "the event continues the client's trace")
	assert.Equal(t, storedTrace(t, a), storedTrace(t, b), "one request, one trace context for its readings")
	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	assert.Equal(t, stored.SpanID(), spans[0].SpanContext.SpanID(), "the stored context is the ingest span's")
	assert.Equal(t, sent.SpanID(), spans[0].Parent.SpanID())

	fresh := tracing.Parse(storedTrace(t, malformed))
	require.True(t, fresh.IsValid(), "a malformed traceparent: a new trace")
	assert.NotEqual(t, sent.TraceID(), fresh.TraceID())
}

func TestTracingOffStoresNoTraceContext(t *testing.T) {
	reset(t)
	id := uuid.New()
	postTraced(t, baseURL, "", id)
	assert.Equal(t, "", storedTrace(t, id))
}

func TestMQTTTraceparentIsContinuedAndAMalformedOneIgnored(t *testing.T) {
	reset(t)
	traces, exp := traced(t)
	dlq := &fakeDLQ{}
	h := ingestion.New(ingestion.Deps{Events: eventstore.New(db.Pool), Topic: "telemetry.v1", DeadLetters: dlq, Validator: contracts.Default(), Tracing: traces, Log: log}).Subscription().Handler
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	msg := func(id uuid.UUID, traceparent any) mqttx.Message {
		v := map[string]any{"event_id": id.String(), "ts": ts, "metrics": map[string]any{"t": 1}}
		if traceparent != nil {
			v["traceparent"] = traceparent
		}
		return mqttx.Message{Topic: "devices/dev-q/telemetry", Payload: mqttPayload(t, v)}
	}
	good, garbled, number, none := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	require.NoError(t, h(context.Background(), []mqttx.Message{
		msg(good, sentTraceparent), msg(garbled, "00-zz-01"), msg(number, 42), msg(none, nil)}))
	require.NoError(t, traces.Shutdown(context.Background()))

	assert.Empty(t, dlq.got, "no reading refused for its traceparent")
	assert.Equal(t, 4, db.Count(t, "events"))
	sent := tracing.Parse(sentTraceparent)
	assert.Equal(t, sent.TraceID(), tracing.Parse(storedTrace(t, good)).TraceID(), "continued from the payload")
	for _, id := range []uuid.UUID{garbled, number, none} {
		sc := tracing.Parse(storedTrace(t, id))
		require.True(t, sc.IsValid())
		assert.NotEqual(t, sent.TraceID(), sc.TraceID(), "a new trace")
	}
	assert.Equal(t, storedTrace(t, garbled), storedTrace(t, none), "readings without a usable traceparent share one new span")
	spans := exp.GetSpans()
	require.Len(t, spans, 2)
	for _, s := range spans {
		v, _ := s.Resource.Set().Value("service.name")
		assert.Equal(t, "ingestion", v.AsString(), "the MQTT intake is the ingestion service")
	}
}
