"""Our own small process supervisor: `inv run` in the foreground, detached, and under reload.

Each child leads its own process group (`group.spawn`), writes its own log file, and is
echoed to the terminal as `name | line`. Readiness is a real probe polled against a
deadline. A crash is restarted with doubling backoff; N failed starts in a row of a process
that has not been ready yet stop everything. SIGINT/SIGTERM/SIGHUP stop every group: TERM,
then KILL; one before every process was ready makes the run fail (exit 128 + the signal).

With a state folder, a run holds its exclusive lock for its whole life (a second run is
refused, whatever the timing) and records itself and each child by kernel identity in
`status.json`, so another shell can see and stop them, and a run after a supervisor was killed
with -9 stops the apps it left behind before starting new ones.

The detached mode (`devenv.proc.detached`) runs this same class in the background.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

import psutil

from devenv import poll
from devenv.proc import group, status
from devenv.proc.console import Console
from devenv.proc.logs import Tail, lines_since
from devenv.proc.record import (
    AlreadyRunning,
    Identity,
    Lock,
    StateWriteError,
)
from devenv.proc.spec import ProcessSpec

__all__ = ["AlreadyRunning", "ProcessSpec", "Supervisor"]

LOCK_FILE = "supervisor.lock"
_TICK = 0.05
_PROBE_INTERVAL = 0.02


@dataclass
class _Child:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes] | None = None
    identity: Identity | None = None
    started_wall: float = 0.0
    started: float = 0.0
    log_offset: int = 0
    ready: bool = False
    ever_ready: bool = False
    attempt: int = 0  # which start a probe belongs to: a late probe must not judge a newer one
    not_ready: str | None = None  # why the current start failed its probe
    settled: threading.Event = field(default_factory=threading.Event)
    failed_starts: int = 0
    crashes: int = 0
    restarts: int = 0
    restart_at: float | None = None


# sysexits' EX_CONFIG, with which the monolith and the AI service refuse a bad setting.
EXIT_BAD_SETTINGS = 78


class Supervisor:
    """Runs `specs` until stopped. `run()` blocks; `swap()`, `reload()` and `request_stop()`
    may be called from other threads while it does.

    `echo`: copy each process's lines to `out` as `name | line` (coloured when `out` is a
    terminal, or `color=True`). `state_dir`: where the pid and status files go, so another
    shell can see and stop this run (`detached.status/stop`). `backoff`: first and
    longest delay before a restart. `max_start_crashes`: failed starts in a row, before the
    process was ever ready, that end the run; a start that exits with EXIT_BAD_SETTINGS ends
    it at once. `stop_timeout`: SIGTERM to SIGKILL. `lock`: the state folder's lock
    (`lock_for`), already taken by the caller (to build under it); else the run takes it."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        out: TextIO | None = None,
        color: bool | None = None,
        echo: bool = True,
        state_dir: Path | None = None,
        max_start_crashes: int = 3,
        backoff: tuple[float, float] = (1.0, 30.0),
        stop_timeout: float = 5.0,
        lock: Lock | None = None,
    ) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique: {names}")
        self.console = Console(names, out or sys.stdout, color)
        self.echo = echo
        self.state_dir = state_dir
        self.max_start_crashes = max_start_crashes
        self.backoff = backoff
        self.stop_timeout = stop_timeout
        self._held = lock
        self.failure: str | None = None
        self.interrupted: int | None = None  # a signal that came before every process was ready
        self._children = {spec.name: _Child(spec) for spec in specs}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._stopping = False
        self.started = threading.Event()  # every process had its first start

    # --- public ------------------------------------------------------------------------
    def run(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start everything, call `on_ready` once when all are ready, supervise until a signal
        or `request_stop()`; stop every group. 0 after a requested stop, 1 after giving up,
        128 + the signal after one that came before every process was ready."""
        with self._signals(), self._state():
            tails = [self._tail(child) for child in self._children.values()] if self.echo else []
            try:
                with self._lock:
                    for child in self._children.values():
                        self._start(child)
                self.started.set()
                announced = False
                while not self._stop.is_set():
                    with self._lock:
                        self._tick()
                    if self.failure:
                        break
                    if not announced and all(c.ready for c in self._children.values()):
                        announced = True
                        if on_ready:
                            on_ready()
                    self._stop.wait(_TICK)
            finally:
                self._shutdown()
                for tail in tails:
                    tail.finish()
        if self.failure:
            self.console.say(f"supervisor: {self.failure}")
            return 1
        if self.interrupted is not None:
            return 128 + self.interrupted
        return 0

    def request_stop(self) -> None:
        self._stop.set()

    def swap(self, name: str, spec: ProcessSpec | None = None) -> bool:
        """Stop `name`, start it again (from `spec` when given), wait for its readiness.
        True when the new process is ready. A new process gets fresh start-crash counts."""
        with self._lock:
            child = self._children[name]
            old, child.popen, child.restart_at = child.popen, None, None
            child.ready, child.failed_starts, child.crashes = False, 0, 0
            if spec is not None:
                child.spec = spec
        if old is not None:
            group.stop_group(old.pid, self.stop_timeout)
            old.wait()
        with self._lock:
            if self._stopping:
                return False
            self._start(child)
            settled = child.settled
        settled.wait(child.spec.ready_timeout + 1)
        return child.ready

    def reload(self, name: str, sig: signal.Signals = signal.SIGHUP) -> bool:
        """Ask a running process to replace its worker (`sig`), then wait for readiness again;
        for launchers such as `zygote`. Falls back to `swap` when it is not running."""
        with self._lock:
            child = self._children[name]
            popen = child.popen if child.popen and child.popen.poll() is None else None
            if popen is not None:
                leader = psutil.Process(popen.pid)
                workers = leader.children()
                child.ready, child.not_ready, child.started = False, None, time.monotonic()
                child.settled = threading.Event()
                leader.send_signal(sig)
        if popen is None:
            return self.swap(name)
        # Probe only once the old worker is gone, or the probe would find it still answering.
        psutil.wait_procs(workers, timeout=self.stop_timeout + 1)
        with self._lock:
            if child.popen is not popen or self._stopping:
                return False
            self._probe_in_background(child, popen)
            settled = child.settled
        settled.wait(child.spec.ready_timeout + 1)
        return child.ready

    def settle(self, name: str, timeout: float) -> bool:
        """True once the current start of `name` is ready or has failed, within `timeout`."""
        if not self.started.wait(timeout):
            return False
        with self._lock:
            settled = self._children[name].settled
        return settled.wait(timeout)

    def spec(self, name: str) -> ProcessSpec:
        return self._children[name].spec

    def pid(self, name: str) -> int | None:
        popen = self._children[name].popen
        return popen.pid if popen else None

    # --- the loop ------------------------------------------------------------------------
    def _start(self, child: _Child) -> None:
        spec = child.spec
        child.log_offset = spec.log_file.stat().st_size if spec.log_file.exists() else 0
        child.ready, child.not_ready, child.restart_at = False, None, None
        child.settled = threading.Event()
        popen = group.spawn(
            spec.argv, log_file=spec.log_file, cwd=spec.cwd, env={**os.environ, **spec.env}
        )
        child.popen, child.identity = popen, Identity.of(popen.pid)
        child.started, child.started_wall = time.monotonic(), time.time()
        try:
            self._write_status()
        except StateWriteError as exc:
            # Untracked, `inv down` could not find it: stop it now, and everything else.
            group.stop_group(popen.pid, self.stop_timeout)
            popen.wait()
            child.popen, child.identity = None, None
            self.failure = f"{exc}; stopping everything"
            self._stop.set()
            return
        self._probe_in_background(child, popen)

    def _probe_in_background(self, child: _Child, popen: subprocess.Popen[bytes]) -> None:
        child.attempt += 1
        args = (child, popen, child.attempt)
        threading.Thread(target=self._probe, args=args, daemon=True).start()

    def _probe(self, child: _Child, popen: subprocess.Popen[bytes], attempt: int) -> None:
        spec = child.spec
        check = spec.readiness(popen.pid)
        try:
            ready = poll.until(
                check,
                spec.ready_timeout,
                interval=_PROBE_INTERVAL,
                cancel=self._stop,
                alive=lambda: popen.poll() is None,
            )
        except poll.Cancelled:
            ready = None
        with self._lock:
            if child.attempt == attempt and ready:
                child.ready, child.ever_ready, child.failed_starts = True, True, 0
                took = time.monotonic() - child.started
                self.console.say(f"{spec.name} ready in {took:.2f}s (pid {popen.pid})")
                with contextlib.suppress(StateWriteError):  # the next write says it
                    self._write_status()
            elif child.attempt == attempt and ready is False and popen.poll() is None:
                child.not_ready = f"not ready after {spec.ready_timeout:g}s"
        child.settled.set()

    def _tick(self) -> None:
        now = time.monotonic()
        for child in self._children.values():
            popen = child.popen
            if popen is not None and (child.not_ready or popen.poll() is not None):
                # Also what the crashed leader left behind in its group: it may hold the port.
                group.stop_group(popen.pid, self.stop_timeout)
                code = popen.wait()
                self._crashed(child, popen, child.not_ready or f"exited with code {code}", code)
                if self.failure:
                    return
            elif popen is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._start(child)

    def _crashed(self, child: _Child, popen: subprocess.Popen[bytes], why: str, code: int) -> None:
        spec, was_ready = child.spec, child.ready
        child.popen, child.identity, child.ready = None, None, False
        child.settled.set()
        last = lines_since(spec.log_file, child.log_offset)
        shown = "".join(f"\n    {line}" for line in last)
        if code == EXIT_BAD_SETTINGS and not was_ready:
            # The process said its settings cannot work: a restart would only say it again.
            self.failure = (
                f"{spec.name} refused its settings (exit {code}); stopping everything. "
                f"Last lines of {spec.log_file}:{shown}"
            )
            return
        if not was_ready:
            child.failed_starts += 1
            # Giving up is for a start-up that cannot work (a bad setting, a missing
            # dependency). Once it has served, a crash loop (the database went away, a bad
            # save under reload) is retried with backoff until the next good start.
            if not child.ever_ready and child.failed_starts >= self.max_start_crashes:
                self.failure = (
                    f"{spec.name} failed {child.failed_starts} starts in a row "
                    f"(last: {why}); stopping everything. Last lines of {spec.log_file}:{shown}"
                )
                return
        # A process that ran for a full maximum backoff counts as healthy again.
        if time.monotonic() - child.started >= self.backoff[1]:
            child.crashes = 0
        child.crashes += 1
        delay = min(self.backoff[0] * 2 ** (child.crashes - 1), self.backoff[1])
        child.restart_at = time.monotonic() + delay
        phase = "while starting" if not was_ready else "after running"
        self.console.say(
            f"{spec.name} (pid {popen.pid}) {why} {phase}; restarting in {delay:.1f}s. "
            f"Last lines of {spec.log_file}:{shown}"
        )
        with contextlib.suppress(StateWriteError):  # the dead child needs no record
            self._write_status()

    def _shutdown(self) -> None:
        with self._lock:
            self._stopping = True
            self._stop.set()
            running = [c.popen for c in self._children.values() if c.popen is not None]
        # Concurrently, so N stubborn processes cost one stop_timeout, not N.
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            list(pool.map(lambda p: group.stop_group(p.pid, self.stop_timeout), running))
        for popen in running:
            popen.wait()
        with self._lock:
            for child in self._children.values():
                child.popen, child.identity, child.ready = None, None, False

    # --- state shared with other shells --------------------------------------------------
    def _write_status(self) -> None:
        if self.state_dir is None:
            return
        apps = {
            name: {
                "identity": c.identity.as_json() if c.popen and c.identity else None,
                "started_at": c.started_wall if c.popen else None,
                "ready": c.ready,
                "restarts": c.restarts,
                "log_file": str(c.spec.log_file),
            }
            for name, c in self._children.items()
        }
        status.write(self.state_dir, apps)

    @contextlib.contextmanager
    def _state(self) -> Iterator[None]:
        if self.state_dir is None:
            yield
            return
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = self._held
        if lock is None:
            lock = lock_for(self.state_dir)
            lock.acquire(wait=False)
        try:
            for line in status.stop_orphans(self.state_dir, self.stop_timeout):
                self.console.say(line)
            self._write_status()
            yield
        finally:
            status.remove(self.state_dir)
            lock.release()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            # Judged by the processes, not by the loop's announcement, which may lag a tick.
            if self.interrupted is None and not all(c.ready for c in self._children.values()):
                self.interrupted = signum
            self._stop.set()

        caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, handler) for sig in caught}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _tail(self, child: _Child) -> Tail:
        name = child.spec.name
        tail = Tail(lambda: child.spec.log_file, lambda text: self.console.line(name, text))
        tail.start()
        return tail


def lock_for(state_dir: Path) -> Lock:
    """The lock one supervisor of `state_dir`'s apps holds for its whole life."""
    return Lock(state_dir / LOCK_FILE, "the supervisor of these apps")
