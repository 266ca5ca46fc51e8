"""The trace viewer as an infrastructure component, natively (the real Zipkin server): `inv up
-c traces` starts it on 127.0.0.1 and `inv status` shows it healthy, a kill -9 heals, `inv
trace` draws spans posted to its /api/v2/spans and finds a reading's trace through the event
store (a real PostgreSQL), and each failure is one line. TRACING=off: it is neither started
nor listed."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from devenv.proc import group
from tests.support.running import gone
from tests.support.stack import Stack, cleaned
from tests.support.status import status_row, status_rows
from tests.support.wait import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TRACE = uuid.uuid4().hex
PARENT, CHILD = "b000000000000001", "b000000000000002"


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with cleaned(tmp_path_factory.mktemp("viewer") / "state") as s:
        s.env["TRACING"] = "on"
        s.inv("up", "-c", "traces", "-c", "db")
        yield s


def spans_url(stack: Stack) -> str:
    return f"http://127.0.0.1:{stack.port('ZIPKIN_PORT')}/api/v2/spans"


def post_spans(stack: Stack, trace: str) -> None:
    now = int(time.time() * 1e6)

    def span(ident: str, parent: str | None, service: str, name: str, offset: int, **tags: str):
        body: dict[str, Any] = {
            "traceId": trace, "id": ident, "name": name, "kind": "SERVER",
            "timestamp": now + offset, "duration": 4000, "localEndpoint": {"serviceName": service},
        }  # fmt: skip
        return {
            **body,
            **({"parentId": parent} if parent else {}),
            **({"tags": tags} if tags else {}),
        }

    spans = [  # child first: the waterfall orders them, not the sender
        span(CHILD, PARENT, "ai-inference", "POST /v1/score", 3000, error="model failed"),
        span(PARENT, None, "ingestion", "POST /ingest/v1/telemetry", 0),
    ]
    requests.post(spans_url(stack), json=spans, timeout=5).raise_for_status()


def test_it_runs_on_loopback_and_is_listed_healthy(viewer: Stack) -> None:
    row = status_row(viewer.inv("status").stdout, "traces")
    assert (row.service, row.state, row.health) == ("zipkin", "running", "healthy"), row
    assert row.address == f"127.0.0.1:{viewer.port('ZIPKIN_PORT')}"
    assert row.pid is not None
    listening = [
        c.laddr
        for p in [psutil.Process(row.pid), *psutil.Process(row.pid).children(recursive=True)]
        for c in p.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening and all(a.ip in ("127.0.0.1", "::ffff:127.0.0.1") for a in listening)
    assert requests.get(f"http://127.0.0.1:{viewer.port('ZIPKIN_PORT')}/health", timeout=5).ok
    assert "Serving HTTP" in viewer.inv("logs", "-c", "traces").stdout


def test_inv_trace_draws_the_posted_spans_in_causal_order(viewer: Stack) -> None:
    post_spans(viewer, TRACE)
    done = viewer.inv("trace", TRACE, "--wait", "15")
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"trace {TRACE}: 2 spans, 2 services"), done.stdout
    assert lines[2].split()[:2] == ["ingestion", "post"]
    assert lines[3].split()[:2] == ["ai-inference", "post"] and "✗ error: model failed" in lines[3]
    link = f"http://127.0.0.1:{viewer.port('ZIPKIN_PORT')}/zipkin/traces/{TRACE}"
    assert lines[-1].endswith(link)
    assert requests.get(link, timeout=5).ok  # the UI serves the trace's page


def test_a_readings_trace_is_found_by_its_event_id(viewer: Stack) -> None:
    """The event store's `trace_context` (a W3C traceparent) names the trace; an event
    without one, or a store without the column, is one line."""
    trace, with_trace, without = uuid.uuid4().hex, uuid.uuid4(), uuid.uuid4()
    with viewer.pg() as conn:
        conn.execute("CREATE TABLE events (event_id uuid PRIMARY KEY)")
        conn.execute("INSERT INTO events VALUES (%s)", (without,))
        missing_column = viewer.inv("trace", str(without), check=False)
        conn.execute("ALTER TABLE events ADD COLUMN trace_context text")
        conn.execute("INSERT INTO events VALUES (%s, %s)", (with_trace, f"00-{trace}-{PARENT}-01"))
        unsampled = uuid.uuid4()
        conn.execute("INSERT INTO events VALUES (%s, %s)", (unsampled, f"00-{trace}-{PARENT}-00"))
    assert missing_column.returncode == 1
    assert missing_column.stderr.strip() == (
        f"error: event {without} was stored without a trace (no trace context)"
    )
    nulled = viewer.inv("trace", str(without), check=False)
    assert nulled.stderr.strip() == missing_column.stderr.strip()
    unknown = uuid.uuid4()
    assert (
        f"no event {unknown} in the event store"
        in viewer.inv("trace", str(unknown), check=False).stderr
    )
    not_sampled = viewer.inv("trace", str(unsampled), "--wait", "15", check=False)
    assert f"trace {trace} was not sampled" in not_sampled.stderr  # at once, not after --wait
    post_spans(viewer, trace)
    found = viewer.inv("trace", str(with_trace), "--wait", "15")
    assert found.stdout.startswith(f"trace {trace}: 2 spans"), found.stdout


def test_a_trace_not_there_is_one_line_saying_spans_arrive_late(viewer: Stack) -> None:
    done = viewer.inv("trace", uuid.uuid4().hex, check=False)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1
    assert "spans arrive a second or so after the request" in done.stderr
    assert "--wait" in done.stderr


def test_a_kill_9_heals_without_a_command(viewer: Stack) -> None:
    before = status_row(viewer.inv("status").stdout, "traces")
    assert before.pid is not None
    group.stop_group(before.pid, 5, first_signal=signal.SIGKILL)

    def healthy_again() -> bool:
        row = status_row(viewer.inv("status").stdout, "traces")
        return (row.state, row.health) == ("running", "healthy") and row.pid != before.pid

    eventually(healthy_again, 120, "zipkin restarted by its supervisor")
    row = status_row(viewer.inv("status").stdout, "traces")
    assert row.restarts == "1" and row.last_exit.startswith("SIGKILL"), row


def test_with_tracing_off_it_is_not_started_nor_listed(tmp_path: Path) -> None:
    with cleaned(tmp_path / "state") as off:
        off.env["TRACING"] = "off"
        table = off.inv("status").stdout
        assert [r.role for r in status_rows(table)] == ["db", "bus", "mqtt", "gateway"], table
        refused = off.inv("up", "-c", "traces", check=False)
        assert refused.returncode == 1
        assert "no component 'traces' while TRACING=off: set TRACING=on" in refused.stderr
        done = off.inv("trace", uuid.uuid4().hex, check=False)
        assert "tracing is off (TRACING=off)" in done.stderr
        assert off.our_processes() == []  # nothing started


def test_switched_off_while_it_runs_it_is_still_listed_and_stopped(tmp_path: Path) -> None:
    """TRACING=off after `inv up` started the viewer: `status` shows it while it runs, and
    `down` stops it (and its supervisor); nothing of it is left."""
    with cleaned(tmp_path / "state") as s:
        s.env["TRACING"] = "on"
        s.inv("up", "-c", "traces")
        pid = status_row(s.inv("status").stdout, "traces").pid
        assert pid is not None
        s.env["TRACING"] = "off"
        row = status_row(s.inv("status").stdout, "traces")
        assert (row.state, row.pid) == ("running", pid), row
        assert "zipkin" in s.inv("down").stdout
        assert gone(pid)
        assert s.our_processes() == []
        assert "traces" not in [r.role for r in status_rows(s.inv("status").stdout)]
