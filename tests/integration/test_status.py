"""`inv status`'s CPU and MEM on a private native stack, as a user reads them, and
`inv status --watch` on a terminal (a real pty, read through a terminal emulator) and in a pipe."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from tests.support.stack import INV, Stack, cleaned
from tests.support.terminal import CTRL_C, Terminal
from tests.support.usage import HELD_PER_BACKEND, backends_holding_memory, shown_size

pytestmark = pytest.mark.integration
TITLE = "(Ctrl-C stops)"  # the first line of every table --watch draws


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with cleaned(tmp_path_factory.mktemp("status") / "state") as s:
        s.inv("up", "-c", "db")
        yield s


def db_row(s: Stack) -> list[str]:
    """`inv status`'s PostgreSQL row: ... PID/CONTAINER (`pid N`), CPU, MEM, UPTIME."""
    shown = s.inv("status").stdout
    return next(line.split() for line in shown.splitlines() if line.startswith("db "))


def test_postgresql_memory_counts_its_backends(db: Stack) -> None:
    with backends_holding_memory(db, 3):
        cells = db_row(db)
        postmaster = psutil.Process(int(cells[cells.index("pid") + 1]))
        alone = postmaster.memory_full_info().pss
    cpu, memory = cells[8], cells[9]  # after `pid N`
    assert re.fullmatch(r"\d+\.\d%", cpu), cells
    # The postmaster alone, plus three backends' tables at the least.
    assert shown_size(memory) >= alone + 3 * HELD_PER_BACKEND, (cells, alone)


def test_watch_redraws_in_place_on_a_terminal_and_ctrl_c_ends_it_cleanly(db: Stack) -> None:
    term = Terminal([*INV, "status", "--watch", "--interval", "0.3"], db.env)
    try:
        assert term.read_until(lambda out: out.count(TITLE.encode()) >= 3, 60), term.output
        term.type(CTRL_C)
        code = term.wait(30)
    finally:
        term.close()
    assert code == 0, term.output  # Ctrl-C is how a watch ends: not a failure
    assert b"Traceback" not in term.output
    # Moved back up to the title: over it, the header and the four components' rows.
    assert term.output.count(b"\r\033[6A") >= 2, term.output
    # What the terminal shows: one table, the last one, at the top (nothing scrolled).
    screen = [line for line in term.screen() if line not in ("", "^C")]  # ^C: the tty's echo
    assert screen[0].endswith(TITLE), screen
    assert screen[1].startswith("ROLE ") and screen[2].startswith("db "), screen
    assert len(screen) == 6, screen
    assert sum(line.startswith("ROLE ") for line in screen) == 1, screen
    assert term.left_running() == []


def test_watch_into_a_pipe_prints_one_table_per_interval(db: Stack) -> None:
    watch = subprocess.Popen(
        [*INV, "status", "--watch", "--interval", "0.3"],
        env=db.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert watch.stdout is not None
    output = b""
    try:
        deadline = time.monotonic() + 60
        while output.count(TITLE.encode()) < 3 and time.monotonic() < deadline:
            if select.select([watch.stdout], [], [], 1)[0]:
                output += os.read(watch.stdout.fileno(), 65536)
        watch.send_signal(signal.SIGINT)
        rest, errors = watch.communicate(timeout=30)
    finally:
        watch.kill()
    tables = (output + rest).decode().split("\n\n")
    assert len(tables) >= 3 and watch.returncode == 0, (output, errors)
    for table in tables[:3]:
        title, header, *rows = table.splitlines()
        assert title.endswith(TITLE) and header.startswith("ROLE "), table
        assert [row.split()[0] for row in rows] == ["db", "bus", "mqtt", "gateway"], table
    assert "\033" not in (output + rest).decode()  # no cursor moves into a file
    assert errors == b""


def test_a_watch_interval_that_is_no_interval_is_refused(db: Stack) -> None:
    result = db.inv("status", "--watch", "--interval", "0", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: --interval must be more than 0 seconds (got 0)"
