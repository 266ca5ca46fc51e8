"""What `inv status`'s CPU and MEM tests share: the MEM column read back, and PostgreSQL
backends made to hold a known amount of memory."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import psycopg

from tests.support.stack import Stack

MiB = 2**20
HELD_PER_BACKEND = 25 * MiB  # at the least: a 32,000-row temporary table of 900-byte rows


def shown_size(text: str) -> float:
    """Bytes of a MEM cell: `8.1M`, `342M`, `1.50G`."""
    match = re.fullmatch(r"([\d.]+)([MG])", text)
    assert match is not None, f"not a MEM figure: {text!r}"
    return float(match[1]) * (MiB if match[2] == "M" else 1024 * MiB)


@contextlib.contextmanager
def backends_holding_memory(s: Stack, count: int) -> Iterator[None]:
    """`count` PostgreSQL backends, each holding a temporary table in its own memory
    (temp_buffers: a backend's private buffers, not the shared ones) while this lasts."""
    with contextlib.ExitStack() as held:
        for _ in range(count):
            conn: psycopg.Connection[tuple[object, ...]] = held.enter_context(s.pg())
            conn.execute("SET temp_buffers = '64MB'")
            conn.execute(
                "CREATE TEMP TABLE held AS"
                " SELECT repeat('x', 900) AS pad FROM generate_series(1, 32000)"
            )
        yield
