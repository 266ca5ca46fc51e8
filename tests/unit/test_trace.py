"""`inv trace`: its input, and the waterfall drawn from a trace as Zipkin answers it
(tests/unit/recorded/zipkin-trace.json: seven spans of six services posted to a real Zipkin
3.5.1 out of order, one without its parent, one with an error, as /api/v2/trace/{id}
returned them)."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from typing import Any

import pytest

from devenv import trace
from devenv.settings import Settings, load

RECORDED = Path(__file__).parent / "recorded" / "zipkin-trace.json"
TRACE = "5b8efff798038103d269b633813fc60c"
LINK = f"http://127.0.0.1:9411/zipkin/traces/{TRACE}"


def spans() -> list[dict[str, Any]]:
    return list(json.loads(RECORDED.read_text()))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings(tmp_path: Path, **env: str) -> Settings:
    return load(env_file=tmp_path / "none", environ=env)


def timing(line: str) -> tuple[str, str]:
    """A waterfall line's start offset and duration (ms), the two numbers before its bar."""
    found = re.search(r"\s(\d+\.\d)\s+(\d+\.\d)\s+\|", line)
    assert found, line
    return found.group(1), found.group(2)


def test_causal_order_puts_each_parent_before_its_children_then_by_start() -> None:
    rows = trace.causal_order(spans())
    assert [(r.depth, r.span["localEndpoint"]["serviceName"]) for r in rows] == [
        (0, "ingestion"),
        (1, "relay"),
        (2, "detector"),
        (3, "ai-inference"),
        (3, "actions"),  # consume: after the AI call it started after
        (4, "actions"),  # its publish
        (0, "query"),  # its parent never arrived: a root of its own, by its start
    ]


def test_spans_whose_parents_form_a_loop_are_shown_not_dropped() -> None:
    looped = [
        {"id": "a", "parentId": "b", "timestamp": 2, "name": "a"},
        {"id": "b", "parentId": "a", "timestamp": 1, "name": "b"},
        {"id": "c", "parentId": "c", "timestamp": 3, "name": "c"},  # its own parent
    ]
    rows = trace.causal_order(looped)
    assert sorted(r.span["id"] for r in rows) == ["a", "b", "c"]
    assert [(r.depth, r.span["id"]) for r in rows] == [(0, "c"), (0, "b"), (1, "a")]


def test_the_waterfall_shows_offsets_durations_bars_errors_and_the_link() -> None:
    lines = trace.waterfall(spans(), TRACE, LINK)
    assert lines[0] == f"trace {TRACE}: 7 spans, 6 services, 10.2 ms, 1 with errors"
    assert lines[1].split()[:4] == ["SERVICE", "OPERATION", "START", "ms"]
    ingest, relay, detector, ai, _consume, publish, query = lines[2:9]
    assert ingest.split()[:4] == ["ingestion", "post", "/ingest/v1/telemetry", "0.0"]
    assert "  publish telemetry.v1" in relay  # indented under its parent
    assert timing(ai) == ("5.6", "2.5") and timing(publish) == ("9.1", "0.9")
    assert ai.endswith("✗ error: true") and "error" not in detector
    # The bar spans the trace: the first starts at the left edge, the last ends at the right.
    assert ingest.split("|")[1].startswith("█") and publish.split("|")[1].endswith("█")
    assert len({line.index("|") for line in lines[2:9]}) == 1  # one column for every bar
    assert "query" in query and lines[-1] == f"open it in the viewer: {LINK}"


def test_a_span_still_open_or_without_duration_is_drawn_all_the_same() -> None:
    first, *_ = spans()
    first.pop("duration")
    lines = trace.waterfall([first], TRACE, LINK)
    assert "0.0" in lines[2] and "█" in lines[2]


def test_an_error_from_the_status_tag_is_marked_with_its_description() -> None:
    span = {**spans()[1], "tags": {"otel.status_code": "ERROR", "otel.status_description": "x"}}
    assert trace.waterfall([span], TRACE, LINK)[2].endswith("✗ error: x")


@pytest.mark.parametrize(
    "ident", ["nope", "5b8efff79803810", "5b8efff798038103d269b633813fc60c0", "zz" * 16]
)
def test_neither_a_trace_id_nor_a_uuid_is_one_line(tmp_path: Path, ident: str) -> None:
    with pytest.raises(trace.TraceError, match=r"neither a trace id .* nor an event id"):
        trace.trace_id(settings(tmp_path), ident)


def test_a_trace_id_is_taken_as_it_is(tmp_path: Path) -> None:
    assert trace.trace_id(settings(tmp_path), TRACE.upper()) == TRACE


def test_no_viewer_says_inv_up_and_with_tracing_off_says_so(tmp_path: Path) -> None:
    port = str(closed_port())
    with pytest.raises(trace.TraceError, match="does not answer: run `inv up`"):
        trace.fetch(settings(tmp_path, ZIPKIN_PORT=port, TRACING="on"), TRACE)
    with pytest.raises(trace.TraceError, match=r"tracing is off \(TRACING=off\)"):
        trace.fetch(settings(tmp_path, ZIPKIN_PORT=port, TRACING="off"), TRACE)


def test_the_database_down_for_an_event_id_says_inv_up(tmp_path: Path) -> None:
    s = settings(tmp_path, POSTGRES_PORT=str(closed_port()))
    with pytest.raises(trace.TraceError, match=r"does not answer .*run `inv up` first"):
        trace.trace_id(s, "0d4a4b9c-8a4e-4c1e-9c9e-7f3b2a1d0e5f")
