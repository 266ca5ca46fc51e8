package tracing

import (
	"context"
	"net/http"
	"strings"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Header is the W3C trace context header, Kafka record header and MQTT
// payload field.
const Header = "traceparent"

// propagator reads and writes traceparent only (no baggage): the one
// format every hop carries.
var propagator = propagation.TraceContext{}

// Traceparent is sc as a W3C traceparent ("00-<trace id>-<span id>-<flags>"),
// "" when sc is not valid (tracing off and nothing to continue).
func Traceparent(sc trace.SpanContext) string {
	if !sc.IsValid() {
		return ""
	}
	return "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-" + sc.TraceFlags().String()
}

// FromContext is the traceparent of ctx's span ("" without one).
func FromContext(ctx context.Context) string {
	return Traceparent(trace.SpanContextFromContext(ctx))
}

// Parse reads a traceparent. A malformed one yields the zero SpanContext:
// it is ignored, and a span started under it begins a new trace.
func Parse(traceparent string) trace.SpanContext {
	if traceparent == "" {
		return trace.SpanContext{}
	}
	ctx := propagator.Extract(context.Background(), propagation.MapCarrier{Header: traceparent})
	return trace.SpanContextFromContext(ctx)
}

// Under is ctx carrying sc as its (remote) parent, ctx itself when sc is
// not valid.
func Under(ctx context.Context, sc trace.SpanContext) context.Context {
	if !sc.IsValid() {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, sc)
}

// Batch is the spans of one batch of messages: one span per distinct trace
// context among them (parent-child under it), one root span for the
// messages that carry none.
type Batch struct {
	spans []trace.Span
	texts [][]byte // each span's traceparent, made once ("" = none)
	of    []int    // index into spans of each message
}

// StartBatch starts name's spans for messages whose trace contexts are
// parents (traceparent texts; "" or malformed = none). A nil tracer is a
// no-op. End the batch with End.
func StartBatch(ctx context.Context, tr trace.Tracer, name string, parents []string, kind trace.SpanKind, attrs ...attribute.KeyValue) *Batch {
	if tr == nil {
		tr = noop.NewTracerProvider().Tracer("")
	}
	b := &Batch{of: make([]int, len(parents))}
	byParent := map[string]int{}
	count := []int{}
	for i, p := range parents {
		j, ok := byParent[p]
		if !ok {
			sc := Parse(p)
			if !sc.IsValid() {
				p = "" // all messages without a usable parent share the root span
				if j, ok = byParent[p]; ok {
					b.of[i], count[j] = j, count[j]+1
					continue
				}
			}
			_, span := tr.Start(Under(ctx, sc), name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
			j = len(b.spans)
			b.spans = append(b.spans, span)
			count = append(count, 0)
			byParent[p] = j
		}
		b.of[i] = j
		count[j]++
	}
	b.texts = make([][]byte, len(b.spans))
	for j, s := range b.spans {
		s.SetAttributes(attribute.Int("messaging.batch.message_count", count[j]))
		b.texts[j] = []byte(Traceparent(s.SpanContext()))
	}
	return b
}

// Of is the span context of message i's span: what it carries on (a
// record header, a stored trace_context).
func (b *Batch) Of(i int) trace.SpanContext { return b.spans[b.of[i]].SpanContext() }

// TraceparentOf is Of(i) as traceparent text, shared by the messages of
// one span (read only; empty = none).
func (b *Batch) TraceparentOf(i int) []byte { return b.texts[b.of[i]] }

// End ends every span, marked failed when err is not nil.
func (b *Batch) End(err error) {
	for _, s := range b.spans {
		if err != nil {
			s.RecordError(err)
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}

type batchKey struct{}

// WithBatch is ctx carrying b, for the handler of b's messages.
func WithBatch(ctx context.Context, b *Batch) context.Context {
	return context.WithValue(ctx, batchKey{}, b)
}

// BatchOf is the span context of message i of the batch ctx carries (the
// zero SpanContext without one).
func BatchOf(ctx context.Context, i int) trace.SpanContext {
	b, _ := ctx.Value(batchKey{}).(*Batch)
	if b == nil || i < 0 || i >= len(b.of) {
		return trace.SpanContext{}
	}
	return b.Of(i)
}

// Handler traces the requests h serves as component's server spans,
// continuing an incoming traceparent (a malformed one is ignored: a new
// trace starts). The health probes are not traced. Tracing off: h itself.
func (t *Tracing) Handler(component string, h http.Handler) http.Handler {
	if !t.On() {
		return h
	}
	return otelhttp.NewHandler(h, component,
		otelhttp.WithTracerProvider(t.Provider(component)),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithFilter(notProbe),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}

// notProbe: health probes (every second from supervisors and /readyz) are
// not traced.
func notProbe(r *http.Request) bool {
	return !strings.HasSuffix(r.URL.Path, "/healthz") && !strings.HasSuffix(r.URL.Path, "/readyz")
}

// Transport is base sending component's client spans and their
// traceparent header. Tracing off: base itself.
func (t *Tracing) Transport(component string, base http.RoundTripper) http.RoundTripper {
	if !t.On() {
		return base
	}
	return otelhttp.NewTransport(base,
		otelhttp.WithTracerProvider(t.Provider(component)),
		otelhttp.WithPropagators(propagator),
		otelhttp.WithFilter(notProbe),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }),
	)
}
