"""What each component costs, its whole process tree counted: `inv status`'s CPU and MEM.

Natively a component is its process tree: the leader `inv up` or `inv run` started, everything
it started (PostgreSQL's backends, which leave its process group; uvicorn's workers; the child
a launcher like `devenv/proc/zygote.py` forks) and every process still in its group (a
grandchild whose parent is gone): what `inv down` stops (`group.group_members`), read here from
one snapshot of the process table per reading. Each process counts once, in the row of the
nearest component that leads it. On docker a component
is a container, and the engine measures it (`docker stats`).

- CPU is CPU time over wall time between two readings: 100% is one core busy, so a JVM's
  threads can show 250%. A process's CPU time here includes what the children it reaped used
  (the kernel's cutime and cstime), so a child that ran and exited between two readings still
  counts, through its parent, and once.
- MEM is the proportional set size summed over the tree: a page that n processes share counts
  1/n in each, so PostgreSQL's shared buffers, or the modules a launcher preloaded before it
  forked, count once; summed RSS would count them once per process. Where a process's smaps
  cannot be read (another user's process, no /proc) its RSS stands in.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import psutil

from devenv.backends.base import ComponentStatus

# The least time CPU is measured over: a one-shot `inv status` waits for what is left of it.
MIN_WINDOW = 0.5
STATS_TIMEOUT = 15.0  # seconds `docker stats` may take before its columns show `-`
_SIZE = re.compile(r"([\d.]+)\s*([kKMGTP]?)(i?)B")


@dataclass(frozen=True)
class Usage:
    cpu: float | None  # % of one core (None: the process started since the last reading)
    memory: int | None  # bytes


@dataclass(frozen=True)
class ProcessInfo:
    ppid: int
    pgid: int
    started: float  # with the pid, who it is: a reused pid is another process
    cpu_seconds: float  # user + system, with what the children it reaped used


class Snapshot:
    """Every process on the machine at one moment: enough to find each tree and its CPU time."""

    def __init__(self) -> None:
        self.at = time.monotonic()
        self.processes: dict[int, ProcessInfo] = {}
        for proc in psutil.process_iter(["ppid", "create_time", "cpu_times"]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                info, times = proc.info, proc.info["cpu_times"]
                if times is None:  # it ended while it was read
                    continue
                cpu = times.user + times.system + times.children_user + times.children_system
                pgid = os.getpgid(proc.pid)
                started = info["create_time"]
                self.processes[proc.pid] = ProcessInfo(info["ppid"], pgid, started, cpu)

    def same_process(self, pid: int, other: Snapshot) -> bool:
        """Whether `pid` is one live process in both snapshots (not a pid reused between)."""
        mine, theirs = self.processes.get(pid), other.processes.get(pid)
        return mine is not None and theirs is not None and mine.started == theirs.started

    def trees(self, leaders: Sequence[int]) -> dict[int, set[int]]:
        """The pids of each live leader's tree; a leader inside another's tree takes its own
        tree out of that one, so nothing counts twice."""
        children: dict[int, list[int]] = {}
        for pid, proc in self.processes.items():
            children.setdefault(proc.ppid, []).append(pid)
        trees = {}
        for leader in leaders:
            if leader not in self.processes:
                continue
            tree, todo = set(), [leader]
            while todo:
                pid = todo.pop()
                tree.add(pid)
                todo.extend(child for child in children.get(pid, ()) if child not in tree)
            trees[leader] = tree | {p for p, proc in self.processes.items() if proc.pgid == leader}
        return {
            leader: tree.difference(*(trees[o] for o in trees if o != leader and o in tree))
            for leader, tree in trees.items()
        }


class Meter:
    """Each component's CPU since the previous reading (the first one: when the meter was
    made, so that the window overlaps whatever the caller does before it reads) and its memory
    now."""

    def __init__(self, min_window: float = MIN_WINDOW) -> None:
        self.min_window = min_window
        self._last = Snapshot()

    def read(self, rows: Sequence[ComponentStatus]) -> list[ComponentStatus]:
        """`rows` with `cpu` and `memory` set wherever something runs."""
        containers = [r.ident for r in rows if r.backend == "docker" and r.state == "running"]
        with _docker_stats(containers) as collect:  # the engine measures meanwhile
            by_leader = self._read_trees([row.pid for row in rows if row.pid is not None])
            by_container = collect()
        measured = [
            (row, by_leader.get(row.pid) if row.pid is not None else by_container.get(row.ident))
            for row in rows
        ]
        return [replace(row, cpu=u.cpu, memory=u.memory) if u else row for row, u in measured]

    def _read_trees(self, leaders: list[int]) -> dict[int, Usage]:
        if leaders:
            time.sleep(max(0.0, self.min_window - (time.monotonic() - self._last.at)))
        before, now = self._last, Snapshot()
        self._last = now
        then, trees = before.trees(leaders), now.trees(leaders)
        usage = {}
        for leader, tree in trees.items():
            memory = sum(_memory(pid) for pid in tree)
            if not now.same_process(leader, before):
                usage[leader] = Usage(None, memory)  # started since: no CPU time to compare
                continue
            used = sum(now.processes[p].cpu_seconds for p in tree) - sum(
                before.processes[p].cpu_seconds for p in then[leader]
            )
            # Below zero only if a member that left was reaped outside the tree: count nothing.
            usage[leader] = Usage(100 * max(0.0, used) / (now.at - before.at), memory)
        return usage


def _memory(pid: int) -> int:
    try:
        proc = psutil.Process(pid)
        with contextlib.suppress(psutil.AccessDenied):
            pss = getattr(proc.memory_full_info(), "pss", None)  # Linux only
            if pss is not None:
                return int(pss)
        return int(proc.memory_info().rss)
    except psutil.NoSuchProcess:
        return 0


@contextlib.contextmanager
def _docker_stats(containers: Sequence[str]) -> Iterator[Callable[[], dict[str, Usage]]]:
    """`docker stats` of `containers` started; the function it yields waits for its figures
    by container id. Stopped on the way out, whatever happened meanwhile."""
    if not containers:
        yield dict
        return
    stats = subprocess.Popen(
        ["docker", "stats", "--no-stream", "--format", "{{json .}}", *containers],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def collect() -> dict[str, Usage]:
        try:
            output, _ = stats.communicate(timeout=STATS_TIMEOUT)
        except subprocess.TimeoutExpired:
            return {}
        return parse_stats(output)

    try:
        yield collect
    finally:
        if stats.poll() is None:
            stats.kill()
            stats.communicate()


def parse_stats(output: str) -> dict[str, Usage]:
    """`docker stats --format '{{json .}}'`: one JSON object per container and line."""
    measured = {}
    for line in output.splitlines():
        with contextlib.suppress(ValueError, KeyError):
            row = json.loads(line)
            cpu = _percent(row.get("CPUPerc", ""))
            measured[row["ID"][:12]] = Usage(cpu, parse_size(row.get("MemUsage", "")))
    return measured


def _percent(text: str) -> float | None:
    with contextlib.suppress(ValueError):
        return float(text.rstrip("%"))
    return None  # `--`: the engine has no figure yet


def parse_size(text: str) -> int | None:
    """Bytes of the first size in `docker stats`' text: `29.4MiB / 7.7GiB`, `1.2kB`."""
    match = _SIZE.search(text)
    if match is None:
        return None
    number, prefix, binary = match.groups()
    unit: int = (1024 if binary else 1000) ** " KMGTP".index(prefix.upper() or " ")
    return round(float(number) * unit)
