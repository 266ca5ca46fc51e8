// Package tracing is the monolith's OpenTelemetry: one tracer provider per
// component (its service name in the trace viewer: ingestion, query,
// actions, relay, projector, detector, command-relay), all feeding one
// bounded export queue (queue.go) that sends Zipkin v2 JSON to
// TRACE_EXPORT_URL. Without an export URL every provider is a no-op and
// nothing is started. Trace context travels as the W3C traceparent text
// (context.go): in HTTP headers, Kafka record headers, the events table's
// trace_context column and the MQTT payloads' traceparent field.
package tracing

import (
	"context"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/zipkin"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// The components, each a service name in the trace viewer.
const (
	Ingestion    = "ingestion"
	Query        = "query"
	Actions      = "actions"
	Relay        = "relay"
	Projector    = "projector"
	Detector     = "detector"
	CommandRelay = "command-relay"
)

// exportTimeout bounds one POST of spans to the viewer: a slow viewer
// delays only the export goroutine, whose queue then drops.
const exportTimeout = 5 * time.Second

// Config is TRACE_EXPORT_URL and TRACE_SAMPLE_RATIO.
type Config struct {
	ExportURL   string  // Zipkin v2 spans endpoint; "" = tracing off
	SampleRatio float64 // share of new traces recorded (ParentBased(TraceIDRatioBased))
}

// Tracing hands out each component's tracer provider. A nil *Tracing, or
// one built without an export URL, hands out no-op providers.
type Tracing struct {
	queue   *queue
	sampler sdktrace.Sampler

	mu        sync.Mutex
	providers map[string]*sdktrace.TracerProvider
}

// New starts the export queue when cfg has an export URL.
func New(cfg Config) (*Tracing, error) {
	if cfg.ExportURL == "" {
		return &Tracing{}, nil
	}
	exp, err := zipkin.New(cfg.ExportURL, zipkin.WithClient(&http.Client{Timeout: exportTimeout}))
	if err != nil {
		return nil, err
	}
	return WithExporter(exp, cfg.SampleRatio, QueueConfig{}), nil
}

// WithExporter is tracing on, exporting through exp (tests pass an
// in-memory exporter).
func WithExporter(exp sdktrace.SpanExporter, sampleRatio float64, qc QueueConfig) *Tracing {
	return &Tracing{
		queue:     newQueue(exp, qc),
		sampler:   sdktrace.ParentBased(sdktrace.TraceIDRatioBased(sampleRatio)),
		providers: map[string]*sdktrace.TracerProvider{},
	}
}

// On tells whether spans are recorded and exported.
func (t *Tracing) On() bool { return t != nil && t.queue != nil }

// Provider is component's tracer provider.
func (t *Tracing) Provider(component string) trace.TracerProvider {
	if !t.On() {
		return noop.NewTracerProvider()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.providers[component]
	if !ok {
		p = sdktrace.NewTracerProvider(
			sdktrace.WithSampler(t.sampler),
			sdktrace.WithSpanProcessor(t.queue),
			sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", component))),
		)
		t.providers[component] = p
	}
	return p
}

// Tracer is component's tracer.
func (t *Tracing) Tracer(component string) trace.Tracer {
	return t.Provider(component).Tracer("platform/" + component)
}

// Counts are the spans exported and dropped since start (/readyz).
func (t *Tracing) Counts() Counts {
	if !t.On() {
		return Counts{}
	}
	return t.queue.counts()
}

// Shutdown exports what the queue holds within ctx, then stops it. The
// providers share the queue, so it is stopped here once rather than by
// each provider's Shutdown.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if !t.On() {
		return nil
	}
	return t.queue.Shutdown(ctx)
}
