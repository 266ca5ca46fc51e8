package tracing_test

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

func serviceName(s tracetest.SpanStub) string {
	v, _ := s.Resource.Set().Value("service.name")
	return v.AsString()
}

func attributeInt(k string, v int) attribute.KeyValue { return attribute.Int(k, v) }

// kept is an in-memory exporter whose spans outlive Shutdown (the
// SDK's own clears them).
type kept struct{ *tracetest.InMemoryExporter }

func (kept) Shutdown(context.Context) error { return nil }

type plain struct{}

func (plain) ServeHTTP(http.ResponseWriter, *http.Request) {}
