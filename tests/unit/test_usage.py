"""`inv status`'s CPU and MEM columns (devenv.usage): real process trees behind wrappers
(marked `tools`: they run real processes for seconds), and the parsing of `docker stats`."""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from devenv import usage
from devenv.backends.base import STATUS_HEADER, ComponentStatus
from devenv.proc import group
from tests.support.wait import eventually

MiB = 2**20
BLOCK = 64 * MiB
BURN = 0.25  # CPU seconds each short-lived child burns

# Each program writes `ready.<name>` in the current folder once it holds what it claims.
HOLD = """
import os, sys, time
block = b"x" * (64 << 20)  # written, so resident
open(f"ready.{sys.argv[1]}", "w").close()
time.sleep(600)
"""
BURN_FOREVER = """
import sys
block = b"x" * (64 << 20)
open(f"ready.{sys.argv[1]}", "w").close()
while True:
    pass
"""
LEAVE_THE_GROUP = "import os, runpy, sys; os.setsid(); runpy.run_path('hold.py', run_name='m')"
ORPHAN = """
import os, runpy, sys
if os.fork() == 0:  # the grandchild stays in the group; its parent leaves it to init
    runpy.run_path("hold.py", run_name="m")
"""
# A preforking launcher: its pages shared with its children until someone writes them.
ZYGOTE = """
import os, time
preloaded = b"x" * (128 << 20)
for n in range(3):
    if os.fork() == 0:
        open(f"ready.child{n}", "w").close()
        time.sleep(600)
        os._exit(0)
open("ready.zygote", "w").close()
time.sleep(600)
"""
# Children that each burn BURN seconds of CPU, exit and are reaped: one line per child reaped.
FORKING_BURNERS = f"""
import os, time
while True:
    pid = os.fork()
    if pid == 0:
        while time.process_time() < {BURN}:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
    with open("reaped", "a") as f:
        f.write("x\\n")
"""


def row(pid: int) -> ComponentStatus:
    return ComponentStatus(
        service=f"tree-{pid}", role="test", backend="native", state="running", healthy=None,
        address="-", ident=f"pid {pid}", uptime=None, pid=pid,
    )  # fmt: skip


@pytest.fixture
def trees(tmp_path: Path) -> Iterator[Callable[..., int]]:
    """Starts `sh -c SCRIPT` in tmp_path (the programs above as files there) as the leader
    of its own group; stops each group and everything it started afterwards."""
    for name, text in {"hold.py": HOLD, "burn.py": BURN_FOREVER, "setsid.py": LEAVE_THE_GROUP,
                       "orphan.py": ORPHAN, "zygote.py": ZYGOTE,
                       "burners.py": FORKING_BURNERS}.items():  # fmt: skip
        (tmp_path / name).write_text(text)
    started: list[int] = []

    def start(script: str, ready: list[str]) -> int:
        proc = group.spawn(
            ["sh", "-c", script.format(python=shlex.quote(sys.executable))],
            log_file=tmp_path / "log",
            cwd=tmp_path,
        )
        started.append(proc.pid)
        eventually(
            lambda: all((tmp_path / f"ready.{name}").exists() for name in ready), 60, str(ready)
        )
        return proc.pid

    yield start
    for pid in started:
        group.stop_group(pid, 5)
    assert [p for p in psutil.process_iter() if _cwd(p) == str(tmp_path)] == []


def _cwd(proc: psutil.Process) -> str:
    try:
        return proc.cwd()
    except psutil.Error:
        return ""


@pytest.mark.tools  # real processes, for seconds
def test_a_wrapper_hides_none_of_its_children(trees: Callable[..., int]) -> None:
    # A shell waits for three children: one burns CPU, one leaves the group as PostgreSQL's
    # backends do, one leaves a grandchild to init in the group. Each holds 64 MiB.
    leader = trees(
        "{python} burn.py burner & {python} setsid.py own-session & {python} orphan.py orphan;"
        " wait",
        ready=["burner", "own-session", "orphan"],
    )
    burner = next(
        p for p in psutil.Process(leader).children() if "burn.py" in " ".join(p.cmdline())
    )
    t_start, burned_start = time.monotonic(), _cpu(burner)
    meter = usage.Meter()
    t_a, burned_a = time.monotonic(), _cpu(burner)
    time.sleep(1)
    t_b, burned_b = time.monotonic(), _cpu(burner)
    (shown,) = meter.read([row(leader)])
    t_end = time.monotonic()

    assert shown.memory is not None and shown.memory >= 3 * BLOCK, shown
    assert shown.cpu is not None
    # CPU % x the window is the CPU time the tree used in it; the window lies between
    # [t_a, t_b] and [t_start, t_end], whatever the machine's load.
    assert shown.cpu / 100 * (t_end - t_start) >= burned_b - burned_a
    # The rest of the tree sleeps: a few milliseconds at most.
    assert shown.cpu / 100 * (t_b - t_a) <= _cpu(burner) - burned_start + 0.05


@pytest.mark.tools  # real processes, for seconds
def test_children_that_come_and_go_between_two_readings_count_once(
    trees: Callable[..., int], tmp_path: Path
) -> None:
    leader = trees("{python} burners.py", ready=[])
    reaped = tmp_path / "reaped"

    def count() -> int:
        return len(reaped.read_text().splitlines()) if reaped.exists() else 0

    eventually(lambda: count() >= 1, 60, "the first child reaped")
    t_start, before_all = time.monotonic(), count()
    meter = usage.Meter()
    t_a, first = time.monotonic(), count()
    eventually(lambda: count() >= first + 5, 60, "five more children reaped")
    t_b, last = time.monotonic(), count()
    (shown,) = meter.read([row(leader)])
    t_end, after_all = time.monotonic(), count()

    assert shown.cpu is not None
    # Every child reaped between t_a and t_b burned BURN inside the window, but the first may
    # have started before it; the most the window can hold is what was reaped from t_start to
    # t_end plus the one burning at its end. Counted twice, this would be twice as much.
    assert shown.cpu / 100 * (t_end - t_start) >= (last - first - 1) * BURN
    assert shown.cpu / 100 * (t_b - t_a) <= (after_all - before_all + 1) * BURN + 0.05


@pytest.mark.tools  # real processes, for seconds
def test_pages_a_launcher_shares_with_the_children_it_forked_count_once(
    trees: Callable[..., int],
) -> None:
    leader = trees("{python} zygote.py", ready=["zygote", "child0", "child1", "child2"])
    (zygote,) = psutil.Process(leader).children()
    members = [zygote, *zygote.children()]
    assert len(members) == 4
    # The bug this avoids: RSS summed over the tree counts the 128 MiB once per process.
    assert sum(p.memory_info().rss for p in members) >= 4 * 128 * MiB
    (shown,) = usage.Meter(min_window=0).read([row(leader)])
    assert shown.memory is not None
    assert 128 * MiB <= shown.memory < (128 + 64) * MiB, shown


@pytest.mark.tools  # real processes, for seconds
def test_a_component_inside_another_counts_in_its_own_row_only(
    trees: Callable[..., int],
) -> None:
    outer = trees("{python} hold.py inner; true", ready=["inner"])
    (inner,) = psutil.Process(outer).children()
    outer_row, inner_row = usage.Meter(min_window=0).read([row(outer), row(inner.pid)])
    assert inner_row.memory is not None and inner_row.memory >= BLOCK
    assert outer_row.memory is not None and outer_row.memory < BLOCK / 4, outer_row


def test_a_row_without_a_process_is_left_as_it_is() -> None:
    gone = ComponentStatus(
        service="kafka", role="bus", backend="native", state="stopped", healthy=None,
        address="-", ident="-", uptime=None,
    )  # fmt: skip
    assert usage.Meter(min_window=0).read([gone]) == [gone]


def test_docker_stats_lines_become_cpu_and_bytes_by_container() -> None:
    output = (
        '{"CPUPerc":"1.25%","ID":"0123456789ab","MemUsage":"29.45MiB / 7.76GiB","Name":"p-1"}\n'
        '{"CPUPerc":"--","ID":"ba9876543210","MemUsage":"1.5kB / 0B","Name":"p-2"}\n'
    )
    assert usage.parse_stats(output) == {
        "0123456789ab": usage.Usage(1.25, round(29.45 * MiB)),
        "ba9876543210": usage.Usage(None, 1500),
    }
    assert usage.parse_size("0B / 0B") == 0
    assert usage.parse_size("2GiB") == 2 * 1024 * MiB
    assert usage.parse_size("--") is None


def test_the_columns_line_up_under_the_header() -> None:
    db = replace(row(4242), uptime=75)
    shown = [
        replace(db, cpu=cpu, memory=memory).line()
        for cpu, memory in [(3.14159, int(8.14 * MiB)), (250.0, 342 * MiB), (None, None)]
    ]
    cpu_end, mem_end = STATUS_HEADER.index("CPU") + 3, STATUS_HEADER.index("MEM") + 3
    assert [line[cpu_end - 6 : cpu_end].strip() for line in shown] == ["3.1%", "250.0%", "-"]
    assert [line[mem_end - 6 : mem_end].strip() for line in shown] == ["8.1M", "342M", "-"]
    up = STATUS_HEADER.index("UPTIME")
    assert all(line[up - 1 : up + 7] == " 1m15s  " for line in shown)
    assert " 3.00G " in replace(db, memory=3 * 1024 * MiB).line()


def _cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system
