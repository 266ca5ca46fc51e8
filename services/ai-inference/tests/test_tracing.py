"""Tracing: the detector's `traceparent` continued, a bad one ignored, sampling, and export
that never slows scoring: to a real HTTP receiver of Zipkin v2 JSON, and to a port where no
viewer listens."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ai_inference.api import get_model_params
from ai_inference.app import create_app
from ai_inference.settings import get_settings
from conftest import TEST_PARAMS, body
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SAMPLED = f"00-{TRACE_ID}-{PARENT_ID}-01"
FLAT = [20.0 + 0.1 * (i % 5) for i in range(40)]


@pytest.fixture
def settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The tracing settings as the test sets them, read afresh by the app it creates."""
    monkeypatch.delenv("TRACE_EXPORT_URL", raising=False)
    monkeypatch.delenv("TRACE_SAMPLE_RATIO", raising=False)
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


def traced_app(exporter: InMemorySpanExporter) -> FastAPI:
    app = create_app(span_exporter=exporter)
    app.dependency_overrides[get_model_params] = lambda: TEST_PARAMS
    return app


def score(app: FastAPI, headers: dict[str, str] | None = None, times: int = 1) -> None:
    with TestClient(app) as client:
        for _ in range(times):
            response = client.post("/v1/score", json=body(FLAT), headers=headers or {})
            assert response.status_code == 200, response.text
        client.get("/healthz").raise_for_status()
        app.state.tracer_provider.force_flush()


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.kind.name == "SERVER"]


def test_the_callers_trace_is_continued_by_the_scoring_span(settings_env: Any) -> None:
    exporter = InMemorySpanExporter()
    score(traced_app(exporter), {"traceparent": SAMPLED})
    (span,) = server_spans(exporter)  # /healthz is not traced
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None and format(span.parent.span_id, "016x") == PARENT_ID
    assert span.name == "POST /v1/score"
    assert span.resource.attributes["service.name"] == "ai-inference"


@pytest.mark.parametrize(
    "header", ["garbage", f"00-{'0' * 32}-{PARENT_ID}-01", f"00-{TRACE_ID}-{PARENT_ID}", "ff-x"]
)
def test_a_malformed_traceparent_is_ignored_and_a_new_trace_starts(
    settings_env: Any, header: str
) -> None:
    exporter = InMemorySpanExporter()
    score(traced_app(exporter), {"traceparent": header})  # served: 200
    (span,) = server_spans(exporter)
    assert span.parent is None
    assert format(span.context.trace_id, "032x") not in (TRACE_ID, "0" * 32)


def test_new_traces_follow_the_ratio_and_a_sampled_caller_is_always_recorded(
    settings_env: pytest.MonkeyPatch,
) -> None:
    settings_env.setenv("TRACE_SAMPLE_RATIO", "0")
    exporter = InMemorySpanExporter()
    app = traced_app(exporter)
    with TestClient(app) as client:
        for _ in range(5):
            assert client.post("/v1/score", json=body(FLAT)).status_code == 200
        app.state.tracer_provider.force_flush()
        assert server_spans(exporter) == []
        response = client.post("/v1/score", json=body(FLAT), headers={"traceparent": SAMPLED})
        assert response.status_code == 200
        app.state.tracer_provider.force_flush()
    assert [format(s.context.trace_id, "032x") for s in server_spans(exporter)] == [TRACE_ID]


def test_without_an_export_url_nothing_is_traced(settings_env: Any) -> None:
    app = create_app()
    assert app.state.tracer_provider is None
    assert not getattr(app, "_is_instrumented_by_opentelemetry", False)


class Viewer(BaseHTTPRequestHandler):
    """Takes Zipkin v2 spans as Zipkin's /api/v2/spans does: a JSON list, 202."""

    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.extend(json.loads(self.rfile.read(length)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_reach_the_export_url_as_zipkin_json(settings_env: pytest.MonkeyPatch) -> None:
    Viewer.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Viewer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v2/spans"
        settings_env.setenv("TRACE_EXPORT_URL", url)
        app = create_app()
        app.dependency_overrides[get_model_params] = lambda: TEST_PARAMS
        score(app, {"traceparent": SAMPLED})
    finally:
        server.shutdown()
        server.server_close()
    (span,) = Viewer.received
    assert span["traceId"] == TRACE_ID and span["parentId"] == PARENT_ID
    assert span["localEndpoint"]["serviceName"] == "ai-inference"
    assert span["kind"] == "SERVER" and span["name"] == "POST /v1/score"


class StalledViewer(BaseHTTPRequestHandler):
    """Takes the connection and answers nothing until `release` is set: a hung viewer."""

    arrived = threading.Event()
    release = threading.Event()
    posts = 0

    def do_POST(self) -> None:
        type(self).posts += 1
        type(self).arrived.set()
        type(self).release.wait(30)
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_a_hung_viewer_never_holds_up_scoring(settings_env: pytest.MonkeyPatch) -> None:
    """While the viewer holds the first export unanswered, every request is still served:
    the export waits on its own thread, not on a request's."""
    StalledViewer.arrived.clear()
    StalledViewer.release.clear()
    StalledViewer.posts = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), StalledViewer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings_env.setenv("TRACE_EXPORT_URL", f"http://127.0.0.1:{server.server_address[1]}/x")
        app = create_app()
        app.dependency_overrides[get_model_params] = lambda: TEST_PARAMS
        with TestClient(app) as client:
            assert client.post("/v1/score", json=body(FLAT)).status_code == 200
            assert StalledViewer.arrived.wait(10), "the first batch was never exported"
            for _ in range(50):  # the viewer still holds that export
                assert client.post("/v1/score", json=body(FLAT)).status_code == 200
            # Exported in batches by one thread: an export per request (51) would be the
            # requests waiting on the viewer.
            assert StalledViewer.posts < 25, StalledViewer.posts
            StalledViewer.release.set()
    finally:
        StalledViewer.release.set()
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_viewer_that_is_down_fails_no_request(settings_env: pytest.MonkeyPatch) -> None:
    """Every export is refused (nothing listens); every request is served all the same."""
    settings_env.setenv("TRACE_EXPORT_URL", f"http://127.0.0.1:{closed_port()}/api/v2/spans")
    app = create_app()
    app.dependency_overrides[get_model_params] = lambda: TEST_PARAMS
    score(app, times=100)
