"""Tracing: one server span per scoring request, in the trace of the caller's `traceparent`.

The detector's call carries W3C trace context; the FastAPI instrumentation continues it (a
malformed header is ignored by the propagator: the request starts a trace of its own and is
served as any other). Spans go to TRACE_EXPORT_URL as Zipkin v2 JSON, in the background: a
BatchSpanProcessor queues them (bounded: past `QUEUE` they are dropped, never waited for)
and one thread exports batches with a short timeout, so a viewer that is down or slow never
slows scoring. No TRACE_EXPORT_URL: no provider, no exporter, no thread (the app is not
instrumented at all). New traces are sampled at TRACE_SAMPLE_RATIO; a sampled caller's trace
is always recorded (ParentBased).
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

from ai_inference.settings import Settings

SERVICE = "ai-inference"
QUEUE = 2048  # spans held while the viewer is slow; past this they are dropped
EXPORT_TIMEOUT_S = 2  # one export request; the queue keeps filling meanwhile
# Probes poll these every second or so: their spans would bury the requests that matter.
UNTRACED = "/healthz,/readyz"


def provider(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """The tracer provider for `settings`, exporting to `exporter` (the Zipkin exporter for
    TRACE_EXPORT_URL when not given); None when there is nowhere to export."""
    if exporter is None:
        if not settings.trace_export_url:
            return None
        exporter = ZipkinExporter(endpoint=settings.trace_export_url, timeout=EXPORT_TIMEOUT_S)
    traced = TracerProvider(
        resource=Resource.create({SERVICE_NAME: SERVICE}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    traced.add_span_processor(
        BatchSpanProcessor(
            exporter,
            max_queue_size=QUEUE,
            schedule_delay_millis=500,
            export_timeout_millis=EXPORT_TIMEOUT_S * 1000,
        )
    )
    return traced


def instrument(app: FastAPI, traced: TracerProvider | None) -> None:
    """A server span per request of `app`, continuing the caller's `traceparent`."""
    if traced is None:
        return
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=traced,
        excluded_urls=UNTRACED,
        # Only the request's own span: ASGI receive/send spans would triple the export.
        exclude_spans=["receive", "send"],
    )
