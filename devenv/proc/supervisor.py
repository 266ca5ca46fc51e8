"""Our own small process supervisor, the one owner of every long-running process: the apps of
`inv run` (foreground, detached, under reload) and each native infrastructure component
(detached, one supervisor each: `devenv.backends.native`).

Each child leads its own process group (`group.spawn`), writes its own log file, and is
echoed as `name | line`. A child starts once the children it depends on are ready; readiness
is a real probe polled against a deadline. A crash is restarted as the spec's restart policy
says (doubling backoff); N failed starts in a row of a process never ready yet stop everything.
SIGINT/SIGTERM/SIGHUP stop every group with its spec's stop signal, then KILL; one before
every process was ready makes the run fail (exit 128 + the signal).

With a state folder, a run holds its exclusive lock for its whole life (a second run is
refused, whatever the timing) and records itself and each child by kernel identity in
`status.json`, so another shell can see and stop them, and a run after a supervisor was killed
with -9 stops what it left behind before starting anew. `devenv.proc.detached` runs this same
class in the background.
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
from typing import TextIO

import psutil

from devenv import poll
from devenv.proc import group, signals, status
from devenv.proc.console import Console
from devenv.proc.logs import Tail, lines_since
from devenv.proc.record import AlreadyRunning, Identity, Lock, StateWriteError
from devenv.proc.spec import ProcessSpec, RestartPolicy, check_run

__all__ = ["AlreadyRunning", "ProcessSpec", "RestartPolicy", "Supervisor"]

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
    waiting: bool = True  # not started yet: what it depends on is not ready
    failed_starts: int = 0
    crashes: int = 0
    restarts: int = 0
    restart_at: float | None = None
    last_exit: tuple[int, float] | None = None  # (return code, wall time) of the last exit


# sysexits' EX_CONFIG, with which the monolith and the AI service refuse a bad setting.
EXIT_BAD_SETTINGS = 78


class Supervisor:
    """Runs `specs` until stopped. `run()` blocks; `swap()`, `reload()` and `request_stop()`
    may be called from other threads while it does.

    `echo`: copy each process's lines to `out` as `name | line` (coloured when `out` is a
    terminal, or `color=True`). `state_dir`: where the lock and status file go, so another
    shell can see and stop this run (`detached.status/stop`). A start that exits with
    EXIT_BAD_SETTINGS ends the run at once. `stop_timeout`: stop signal to SIGKILL. `lock`:
    the state folder's lock (`lock_for`), taken by the caller (to build under it); else the
    run takes it."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        out: TextIO | None = None,
        color: bool | None = None,
        echo: bool = True,
        state_dir: Path | None = None,
        stop_timeout: float = 5.0,
        lock: Lock | None = None,
    ) -> None:
        check_run(specs)
        self.console = Console([spec.name for spec in specs], out or sys.stdout, color)
        self.echo = echo
        self.state_dir = state_dir
        self.stop_timeout = stop_timeout
        self._held = lock
        self.failure: str | None = None
        self.failed: dict[str, str] | None = None  # {"name", "why"} of the start that ended it
        self.unrecorded: StateWriteError | None = None  # a process that could not be recorded
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
        with signals.handled(self._signalled), self._state():
            tails = [self._tail(child) for child in self._children.values()] if self.echo else []
            try:
                with self._lock:
                    self._start_those_due()
                announced = False
                while not self._stop.is_set():
                    with self._lock:
                        self._tick()
                        self._start_those_due()
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
            old, old_spec = child.popen, child.spec
            child.popen, child.restart_at = None, None
            child.ready, child.failed_starts, child.crashes = False, 0, 0
            if spec is not None:
                child.spec = spec
        if old is not None:
            self._stop_process(old_spec, old)
        with self._lock:
            if self._stopping:
                return False
            self._start(child)
            settled = child.settled
        return self._ready_within(child, settled)

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
        return self._ready_within(child, settled)

    def _ready_within(self, child: _Child, settled: threading.Event) -> bool:
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
    def _start_those_due(self) -> None:
        """First starts of the children whose dependencies (of this run) are all ready."""
        for child in self._children.values():
            needs = [self._children[d] for d in child.spec.depends_on if d in self._children]
            if child.waiting and not self.failure and all(d.ready for d in needs):
                self._start(child)
        if not any(child.waiting for child in self._children.values()):
            self.started.set()

    def _start(self, child: _Child) -> None:
        spec = child.spec
        child.log_offset = spec.log_file.stat().st_size if spec.log_file.exists() else 0
        child.ready, child.not_ready, child.restart_at, child.waiting = False, None, None, False
        child.settled = threading.Event()
        env, user = {**os.environ, **spec.env}, spec.user
        popen = group.spawn(spec.argv, log_file=spec.log_file, cwd=spec.cwd, env=env, user=user)
        child.popen, child.identity = popen, Identity.of(popen.pid)
        child.started, child.started_wall = time.monotonic(), time.time()
        try:
            self._write_status()
        except StateWriteError as exc:
            # Untracked, `inv down` could not find it: stop it now, and everything else.
            self._stop_process(spec, popen)
            child.popen, child.identity = None, None
            self.failure, self.unrecorded = f"{exc}; stopping everything", exc
            self._stop.set()
            return
        self._probe_in_background(child, popen)

    def _stop_process(self, spec: ProcessSpec, popen: subprocess.Popen[bytes]) -> None:
        """Stop the group `popen` leads as `spec` says, and reap it. A leader that is gone
        already cannot pass a leader-only signal on: its whole group gets it then."""
        leader_only = spec.leader_only and popen.poll() is None
        group.stop_group(
            popen.pid, self.stop_timeout, first_signal=spec.stop_signal, leader_only=leader_only
        )
        popen.wait()

    def _probe_in_background(self, child: _Child, popen: subprocess.Popen[bytes]) -> None:
        child.attempt += 1
        args = (child, popen, child.attempt)
        threading.Thread(target=self._probe, args=args, daemon=True).start()

    def _probe(self, child: _Child, popen: subprocess.Popen[bytes], attempt: int) -> None:
        spec = child.spec
        check = spec.readiness(popen.pid)
        try:
            ready = poll.until(
                check, spec.ready_timeout, interval=_PROBE_INTERVAL, cancel=self._stop,
                alive=lambda: popen.poll() is None,
            )  # fmt: skip
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
                # Also what the crashed leader left behind in its group: it may hold the port
                # (PostgreSQL's workers hold its shared memory, which a new postmaster refuses).
                self._stop_process(child.spec, popen)
                code = popen.returncode
                self._crashed(child, popen, child.not_ready or status.describe_exit(code), code)
                if self.failure:
                    return
            elif popen is None and child.restart_at is not None and now >= child.restart_at:
                child.restarts += 1
                self._start(child)

    def _crashed(self, child: _Child, popen: subprocess.Popen[bytes], why: str, code: int) -> None:
        spec, was_ready, policy = child.spec, child.ready, child.spec.restart
        child.popen, child.identity, child.ready = None, None, False
        child.last_exit = (code, time.time())
        child.settled.set()
        last = lines_since(spec.log_file, child.log_offset)
        shown = "".join(f"\n    {line}" for line in last)
        if code == EXIT_BAD_SETTINGS and not was_ready:
            # The process said its settings cannot work: a restart would only say it again.
            self.failure = (
                f"{spec.name} refused its settings (exit {code}); stopping everything. "
                f"Last lines of {spec.log_file}:{shown}"
            )
            self.failed = {"name": spec.name, "why": f"refused its settings (exit {code})"}
            return
        if not was_ready:
            child.failed_starts += 1
            # Giving up is for a start-up that cannot work (a bad setting, a missing
            # dependency). Once it has served, a crash loop (the database went away, a bad
            # save under reload) is retried with backoff until the next good start.
            if not child.ever_ready and child.failed_starts >= policy.give_up_after:
                self.failure = (
                    f"{spec.name} failed {child.failed_starts} starts in a row "
                    f"(last: {why}); stopping everything. Last lines of {spec.log_file}:{shown}"
                )
                self.failed = {"name": spec.name, "why": why}
                return
        # A process that ran for a full maximum backoff counts as healthy again.
        if time.monotonic() - child.started >= policy.longest:
            child.crashes = 0
        child.crashes += 1
        delay = policy.delay(child.crashes)
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
            running = [(c.spec, c.popen) for c in self._children.values() if c.popen is not None]
        # Concurrently, so N stubborn processes cost one stop_timeout, not N.
        with ThreadPoolExecutor(max_workers=max(1, len(running))) as pool:
            list(pool.map(lambda each: self._stop_process(*each), running))
        with self._lock:
            for child in self._children.values():
                child.popen, child.identity, child.ready = None, None, False

    # --- state shared with other shells --------------------------------------------------
    def _write_status(self) -> None:
        if self.state_dir is None:
            return
        apps = {
            name: status.entry(
                c.spec,
                c.identity if c.popen else None,
                started_at=c.started_wall if c.popen else None,
                ready=c.ready,
                restarts=c.restarts,
                last_exit=c.last_exit,
            )
            for name, c in self._children.items()
        }
        status.write(self.state_dir, apps, self.failed)

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
            if self.failed is None:
                status.remove(self.state_dir)
            else:  # why, for the command that started this run (`detached.start`)
                with contextlib.suppress(StateWriteError):
                    self._write_status()
            lock.release()

    def _signalled(self, signum: int) -> None:
        # Judged by the processes, not by the loop's announcement, which may lag a tick.
        if self.interrupted is None and not all(c.ready for c in self._children.values()):
            self.interrupted = signum
        self._stop.set()

    def _tail(self, child: _Child) -> Tail:
        name = child.spec.name
        tail = Tail(lambda: child.spec.log_file, lambda text: self.console.line(name, text))
        tail.start()
        return tail


def lock_for(state_dir: Path) -> Lock:
    """The lock one supervisor of `state_dir`'s apps holds for its whole life."""
    return Lock(state_dir / LOCK_FILE, "the supervisor of these apps")
