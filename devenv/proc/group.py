"""Process groups we start and must stop: spawn in a new session, stop TERM then KILL.

Every long-running process the project starts goes through `spawn`, so it leads its own
process group and `stop_group` can reach its children and grandchildren too. Which of them
are ours across commands is `devenv.proc.record`'s business.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
    feed: bytes | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session, stdout and stderr appended to `log_file`.
    `feed` is written to its stdin (then closed): data that must not touch the disk."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL if feed is None else subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )
    if feed is not None and proc.stdin is not None:
        with contextlib.suppress(BrokenPipeError), proc.stdin:
            proc.stdin.write(feed)
    return proc


def group_members(pid: int) -> list[psutil.Process]:
    """The process `pid` leads and every live process of its group or its descendants."""
    members: dict[int, psutil.Process] = {}
    try:
        leader = psutil.Process(pid)
        members[pid] = leader
        for child in leader.children(recursive=True):
            members[child.pid] = child
    except psutil.NoSuchProcess:
        pass
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            if os.getpgid(proc.pid) == pid:
                members[proc.pid] = proc
    return [p for p in members.values() if _alive(p)]


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the group led by `pid` and to every member and descendant (SIGSTOP and
    SIGCONT of a whole server, workers included)."""
    _signal_all(pid, group_members(pid), sig)


def stop_group(
    pid: int,
    timeout: float,
    *,
    first_signal: signal.Signals = signal.SIGTERM,
    leader_only: bool = False,
) -> bool:
    """Send `first_signal` to the group led by `pid` (or to the leader alone, for servers
    that shut their own workers down in order, like PostgreSQL), then SIGKILL every member
    and descendant still alive after `timeout` seconds. Returns True if it had to kill."""
    members = group_members(pid)
    if not members:
        return False
    if leader_only:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, first_signal)
    else:
        _signal_all(pid, members, first_signal)
    alive = _wait_all_gone(members, timeout)
    if not alive:
        return False
    _signal_all(pid, alive, signal.SIGKILL)
    _wait_all_gone(alive, 5)
    return True


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until process `pid` has exited; True if it did within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


def _wait_all_gone(members: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Poll rather than psutil.wait_procs: a zombie counts as gone here, since the parent
    that should reap it (often PID 1 in containers) may take its time."""
    deadline = time.monotonic() + timeout
    alive = members
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if _alive(p)]
    return alive


def _signal_all(pgid: int, members: list[psutil.Process], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for proc in members:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(sig)


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        return _alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return False
