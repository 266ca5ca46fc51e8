package tracing_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"platform/internal/tracing"
)

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func on(t *testing.T) (*tracing.Tracing, kept) {
	t.Helper()
	exp := kept{tracetest.NewInMemoryExporter()}
	tr := tracing.WithExporter(exp, 1, tracing.QueueConfig{})
	return tr, exp
}

// exported stops tr (sending what it queued) and returns the spans.
func exported(t *testing.T, tr *tracing.Tracing, exp kept) tracetest.SpanStubs {
	t.Helper()
	require.NoError(t, tr.Shutdown(context.Background()))
	return exp.GetSpans()
}

func TestTraceparentRoundTrip(t *testing.T) {
	sc := tracing.Parse(incoming)
	require.True(t, sc.IsValid())
	assert.True(t, sc.IsRemote())
	assert.True(t, sc.IsSampled())
	assert.Equal(t, incoming, tracing.Traceparent(sc))
	assert.Equal(t, "", tracing.Traceparent(trace.SpanContext{}), "nothing to carry")
}

func TestMalformedTraceparentIsIgnored(t *testing.T) {
	for _, bad := range []string{"", "garbage", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01x",
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"} {
		assert.False(t, tracing.Parse(bad).IsValid(), bad)
	}
}

func TestBatchIsOneSpanPerTraceUnderIt(t *testing.T) {
	tr, exp := on(t)
	other := "00-11111111111111111111111111111111-2222222222222222-01"
	parents := []string{incoming, incoming, other, "", "garbage", incoming}
	b := tracing.StartBatch(context.Background(), tr.Tracer(tracing.Relay), "publish", parents, trace.SpanKindProducer)
	assert.Equal(t, b.Of(0), b.Of(1), "one request's readings share their span")
	assert.Equal(t, b.Of(0), b.Of(5))
	assert.Equal(t, b.Of(3), b.Of(4), "no usable parent: one new root for them")
	assert.Equal(t, tracing.Parse(incoming).TraceID(), b.Of(0).TraceID())
	assert.Equal(t, tracing.Parse(other).TraceID(), b.Of(2).TraceID())
	assert.NotEqual(t, tracing.Parse(incoming).TraceID(), b.Of(3).TraceID())
	b.End(nil)

	spans := exported(t, tr, exp)
	require.Len(t, spans, 3)
	byTrace := map[trace.TraceID]tracetest.SpanStub{}
	for _, s := range spans {
		byTrace[s.SpanContext.TraceID()] = s
		assert.Equal(t, "relay", serviceName(s), "the component is the service name")
	}
	first := byTrace[tracing.Parse(incoming).TraceID()]
	assert.Equal(t, tracing.Parse(incoming).SpanID(), first.Parent.SpanID(), "parent-child across the hop")
	assert.Contains(t, first.Attributes, attributeInt("messaging.batch.message_count", 3))
}

func TestHandlerContinuesTraceparentOrStartsATrace(t *testing.T) {
	tr, exp := on(t)
	var seen []trace.SpanContext
	var mu sync.Mutex
	h := tr.Handler(tracing.Ingestion, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, trace.SpanContextFromContext(r.Context()))
		mu.Unlock()
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, header := range []string{incoming, "00-not-a-trace-01", ""} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ingest/v1/telemetry", nil)
		if header != "" {
			req.Header.Set("traceparent", header)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "a malformed traceparent never refuses a request")
		resp.Body.Close()
	}
	resp, err := http.Get(srv.URL + "/readyz")
	require.NoError(t, err)
	resp.Body.Close()

	require.Len(t, seen, 4)
	assert.Equal(t, tracing.Parse(incoming).TraceID(), seen[0].TraceID(), "continued")
	assert.True(t, seen[1].IsValid())
	assert.NotEqual(t, tracing.Parse(incoming).TraceID(), seen[1].TraceID(), "malformed: a new trace")
	assert.True(t, seen[2].IsValid(), "none: a new trace")
	spans := exported(t, tr, exp)
	require.Len(t, spans, 3, "the health probe is not traced")
	assert.Equal(t, "POST /ingest/v1/telemetry", spans[0].Name)
	assert.Equal(t, "ingestion", serviceName(spans[0]))
}

func TestTransportSendsTraceparent(t *testing.T) {
	tr, exp := on(t)
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("traceparent") }))
	defer srv.Close()
	cl := &http.Client{Transport: tr.Transport(tracing.Detector, http.DefaultTransport)}
	req, _ := http.NewRequestWithContext(tracing.Under(context.Background(), tracing.Parse(incoming)), http.MethodPost, srv.URL+"/v1/score", nil)
	resp, err := cl.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	sent := tracing.Parse(got)
	assert.Equal(t, tracing.Parse(incoming).TraceID(), sent.TraceID())
	spans := exported(t, tr, exp)
	require.Len(t, spans, 1)
	assert.Equal(t, spans[0].SpanContext.SpanID(), sent.SpanID(), "the client span is the callee's parent")
	assert.Equal(t, "detector", serviceName(spans[0]))
}

func TestOffIsNoOp(t *testing.T) {
	tr, err := tracing.New(tracing.Config{})
	require.NoError(t, err)
	assert.False(t, tr.On())
	h := plain{}
	assert.Equal(t, http.Handler(h), tr.Handler(tracing.Ingestion, h), "no middleware at all")
	_, span := tr.Tracer(tracing.Relay).Start(context.Background(), "x")
	assert.False(t, span.SpanContext().IsValid(), "no trace starts")
	assert.Equal(t, tracing.Counts{}, tr.Counts())
	require.NoError(t, tr.Shutdown(context.Background()))
}

// blocked is a viewer that never answers until released, whatever the
// export's deadline: were ending a span ever to wait for an export, the test
// using it would never end (and the test binary's timeout fails it).
type blocked struct {
	release chan struct{}
	mu      sync.Mutex
	got     int
}

func (b *blocked) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	<-b.release
	b.mu.Lock()
	b.got += len(spans)
	b.mu.Unlock()
	return nil
}

func (b *blocked) Shutdown(context.Context) error { return nil }

func TestFullQueueDropsAndCountsWithoutWaiting(t *testing.T) {
	exp := &blocked{release: make(chan struct{})}
	tr := tracing.WithExporter(exp, 1, tracing.QueueConfig{Size: 10, Batch: 5, Interval: time.Hour})
	tracer := tr.Tracer(tracing.Ingestion)
	for range 100 { // returns although the viewer holds the first batch
		_, s := tracer.Start(context.Background(), "request")
		s.End()
	}
	c := tr.Counts()
	// One batch of 5 is stuck in the export, 10 wait in the queue.
	assert.GreaterOrEqual(t, c.Dropped, int64(85))
	assert.LessOrEqual(t, c.Dropped, int64(90))
	close(exp.release)
	require.NoError(t, tr.Shutdown(context.Background()))
	c = tr.Counts()
	assert.Equal(t, int64(100), c.Exported+c.Dropped, "every span is counted once")
	assert.Equal(t, int64(exp.got), c.Exported)
}

func TestUnsampledRatioExportsNothingNew(t *testing.T) {
	exp := kept{tracetest.NewInMemoryExporter()}
	tr := tracing.WithExporter(exp, 0, tracing.QueueConfig{})
	_, root := tr.Tracer(tracing.Ingestion).Start(context.Background(), "new trace")
	root.End()
	_, child := tr.Tracer(tracing.Ingestion).Start(tracing.Under(context.Background(), tracing.Parse(incoming)), "continued")
	child.End()
	spans := exported(t, tr, exp)
	require.Len(t, spans, 1, "ratio 0 samples no new trace; a sampled parent is always followed")
	assert.Equal(t, "continued", spans[0].Name)
}

func TestShutdownGivesUpAtItsDeadlineWhileTheViewerHangs(t *testing.T) {
	exp := &blocked{release: make(chan struct{})}
	defer close(exp.release)
	tr := tracing.WithExporter(exp, 1, tracing.QueueConfig{Batch: 1, Interval: time.Hour})
	_, s := tr.Tracer(tracing.Ingestion).Start(context.Background(), "request")
	s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, tr.Shutdown(ctx), context.DeadlineExceeded)
	_, late := tr.Tracer(tracing.Ingestion).Start(context.Background(), "after shutdown")
	late.End()
	assert.Equal(t, int64(1), tr.Counts().Dropped, "a span ended after shutdown is dropped, counted")
}
