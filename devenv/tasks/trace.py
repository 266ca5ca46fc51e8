"""`inv trace ID`: one trace of the local viewer as a terminal waterfall, and its UI link."""

from __future__ import annotations

from invoke.context import Context
from invoke.tasks import task

from devenv import settings
from devenv import trace as traces
from devenv.tasks import user_errors


@task(
    help={
        "id": "A trace id (32 hex digits) or a reading's event_id (a UUID).",
        "wait": "Wait up to this many seconds for the spans to arrive (default 0).",
    }
)
def trace(c: Context, id: str, wait: int = 0) -> None:
    """A trace (or a reading's, by event_id) as a waterfall: service, operation, start,
    duration, errors, in causal order; then the viewer's link."""
    with user_errors():
        lines = traces.show(settings.load(), id, wait)
    print("\n".join(lines))
