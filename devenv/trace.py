"""`inv trace ID`: one trace from the local viewer (Zipkin) as a terminal waterfall.

ID is a trace id (32 hex digits) or a reading's `event_id` (a UUID), whose trace is the one
its W3C `traceparent` names, kept with the event (`events.trace_context`). The spans come
from Zipkin's `/api/v2/trace/{id}`; they are drawn in causal order (a parent before its
children, siblings by start time), each with its service, operation, start offset and
duration, a bar on the trace's time line and an error mark, then the UI link.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

import psycopg

from devenv import poll
from devenv.database import client_env
from devenv.errors import UserError
from devenv.settings import Settings

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
TRACEPARENT = re.compile(
    r"^[0-9a-f]{2}-(?P<trace>[0-9a-f]{32})-[0-9a-f]{16}-(?P<flags>[0-9a-f]{2})$"
)
SAMPLED = 0x01  # the traceparent flag: the trace was recorded
BAR_WIDTH = 32
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Span = Mapping[str, Any]  # one Zipkin v2 span, as /api/v2/trace/{id} returns it


class TraceError(UserError):
    """ID names no trace the viewer can show; the message says why and what to do."""


class NotFound(TraceError):
    """The viewer has no span of the trace (yet)."""


@dataclass(frozen=True)
class Row:
    depth: int
    span: Span


def trace_id(settings: Settings, ident: str) -> str:
    """The trace id ID names: itself, or the trace of the event with that `event_id`."""
    text = ident.strip().lower()
    if TRACE_ID.match(text):
        return text
    try:
        event_id = uuid.UUID(text)
    except ValueError:
        raise TraceError(
            f"{ident!r} is neither a trace id (32 hex digits) nor an event id (a UUID)"
        ) from None
    return _trace_of_event(settings, event_id)


def _trace_of_event(settings: Settings, event_id: uuid.UUID) -> str:
    env = client_env(settings)
    try:
        with psycopg.connect(
            host=env["PGHOST"], port=int(env["PGPORT"]), user=env["PGUSER"],
            password=env["PGPASSWORD"], dbname=env["PGDATABASE"], connect_timeout=5,
        ) as conn:  # fmt: skip
            row = conn.execute(
                "SELECT trace_context FROM events WHERE event_id = %s", (event_id,)
            ).fetchone()
    except psycopg.errors.UndefinedColumn:
        row = (None,)  # an event store from before tracing: no event has a trace
    except psycopg.errors.UndefinedTable:
        raise TraceError(
            "the database has no event store yet: the monolith creates it as it starts "
            "(`inv run`, or `inv db.migrate`)"
        ) from None
    except psycopg.OperationalError as exc:
        where = f"{env['PGHOST']}:{env['PGPORT']}"
        raise TraceError(
            f"the database at {where} does not answer ({str(exc).strip().splitlines()[0]}): "
            "run `inv up` first"
        ) from None
    if row is None:
        raise TraceError(f"no event {event_id} in the event store (`inv db.shell` to look)")
    found = TRACEPARENT.match(str(row[0] or ""))
    if found is None:
        raise TraceError(f"event {event_id} was stored without a trace (no trace context)")
    if not int(found.group("flags"), 16) & SAMPLED:
        raise TraceError(
            f"event {event_id}'s trace {found.group('trace')} was not sampled: its spans were "
            "never recorded (TRACE_SAMPLE_RATIO below 1 records some new traces; 1, all)"
        )
    return found.group("trace")


def fetch(settings: Settings, trace: str, wait: float = 0.0) -> list[Span]:
    """The trace's spans from the viewer; waits up to `wait` seconds for them to arrive."""

    def ask() -> list[Span] | None:
        try:
            return _get(settings, trace)
        except NotFound:
            return None

    spans = poll.until(ask, wait, interval=0.5) if wait > 0 else None
    return spans or _get(settings, trace)


def _get(settings: Settings, trace: str) -> list[Span]:
    url = f"{viewer(settings)}/api/v2/trace/{trace}"
    try:
        with _NO_PROXY.open(url, timeout=5) as response:
            spans: list[Span] = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise NotFound(
                f"trace {trace} is not in the viewer: spans arrive a second or so after the "
                "request (retry, or `--wait 10`); the viewer keeps them in memory only since "
                f"it started; {ui_link(settings, trace)}"
            ) from None
        raise TraceError(f"the trace viewer answered {exc.code} for {url}") from None
    except (urllib.error.URLError, OSError, HTTPException):
        if settings.TRACING == "off":
            raise TraceError(
                "tracing is off (TRACING=off): no viewer runs and the apps export no spans; "
                "set TRACING=on, then `inv up`"
            ) from None
        raise TraceError(
            f"the trace viewer at {viewer(settings)} does not answer: run `inv up` "
            "(it starts with TRACING=on)"
        ) from None
    return spans


def viewer(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.ZIPKIN_PORT}"


def ui_link(settings: Settings, trace: str) -> str:
    return f"{viewer(settings)}/zipkin/traces/{trace}"


def causal_order(spans: Sequence[Span]) -> list[Row]:
    """Each span after its parent, siblings by start time; a span whose parent is missing
    (not exported, or not arrived yet) is a root of its own."""
    ids = {span.get("id") for span in spans}
    children: dict[str | None, list[Span]] = {}
    for span in spans:
        parent = span.get("parentId")
        is_root = parent not in ids or parent == span.get("id")
        children.setdefault(None if is_root else parent, []).append(span)
    rows: list[Row] = []
    seen: set[int] = set()

    def visit(span: Span, depth: int) -> None:
        if id(span) in seen:
            return
        seen.add(id(span))
        rows.append(Row(depth, span))
        for child in sorted(children.get(span.get("id"), []), key=_start):
            visit(child, depth + 1)

    for root in sorted(children.get(None, []), key=_start):
        visit(root, 0)
    # Spans whose parents name each other reach no root: shown as roots, never left out.
    for span in sorted(spans, key=_start):
        visit(span, 0)
    return rows


def waterfall(spans: Sequence[Span], trace: str, link: str) -> list[str]:
    """The trace as lines: a header, one line per span in causal order, the UI link."""
    rows = causal_order(spans)
    start = min(_start(s) for s in spans)
    end = max(_start(s) + int(s.get("duration", 0)) for s in spans)
    total = max(end - start, 1)
    services = {_service(s) for s in spans}
    errors = sum(1 for s in spans if _error(s) is not None)
    lines = [
        f"trace {trace}: {len(spans)} spans, {len(services)} services, "
        f"{total / 1000:.1f} ms" + (f", {errors} with errors" if errors else ""),
        f"{'SERVICE':<14} {'OPERATION':<36} {'START ms':>9} {'DUR ms':>8}  TIMELINE",
    ]
    for row in rows:
        span = row.span
        offset, duration = _start(span) - start, int(span.get("duration", 0))
        left = round(offset / total * BAR_WIDTH)
        width = max(1, round(duration / total * BAR_WIDTH))
        bar = (" " * left + "█" * width).ljust(BAR_WIDTH)[:BAR_WIDTH]
        operation = ("  " * row.depth + str(span.get("name") or "?"))[:36]
        error = _error(span)
        mark = f"  ✗ error: {error}" if error is not None else ""
        lines.append(
            f"{_service(span)[:14]:<14} {operation:<36} {offset / 1000:>9.1f} "
            f"{duration / 1000:>8.1f}  |{bar}|{mark}"
        )
    lines.append(f"open it in the viewer: {link}")
    return lines


def _start(span: Span) -> int:
    return int(span.get("timestamp", 0))


def _service(span: Span) -> str:
    return str((span.get("localEndpoint") or {}).get("serviceName") or "?")


def _error(span: Span) -> str | None:
    """The span's error, if it has one: Zipkin's `error` tag (its value may be empty), or
    OpenTelemetry's status carried as a tag."""
    tags = span.get("tags") or {}
    if "error" in tags:
        return str(tags["error"]) or "true"
    if tags.get("otel.status_code") == "ERROR":
        return str(tags.get("otel.status_description") or "ERROR")
    return None


def show(settings: Settings, ident: str, wait: float = 0.0) -> list[str]:
    """What `inv trace ID` prints."""
    trace = trace_id(settings, ident)
    return waterfall(fetch(settings, trace, wait), trace, ui_link(settings, trace))
