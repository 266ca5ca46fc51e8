"""Process groups we start and must stop: spawn in a new session, stop TERM then KILL.

Every long-running process the project starts goes through `spawn`, so it leads its own
process group and `stop_group` can reach its children and grandchildren too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class PidFile:
    """A pid file that is never trusted blindly: a pid is only 'running' while the process
    still exists and was started no later than the file was written."""

    path: Path

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n")

    def read(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running_pid(self) -> int | None:
        pid = self.read()
        if pid is None:
            return None
        try:
            proc = psutil.Process(pid)
            # A recycled pid belongs to a process created after our file was written.
            if proc.create_time() > self.path.stat().st_mtime + 1:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.NoSuchProcess, FileNotFoundError):
            return None
        return pid

    def is_stale(self) -> bool:
        return self.path.exists() and self.running_pid() is None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def spawn(
    argv: Sequence[str],
    *,
    log_file: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session, stdout and stderr appended to `log_file`."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )


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
