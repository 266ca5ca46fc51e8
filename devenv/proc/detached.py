"""The supervisor in the background: `inv run --detach` and each native infrastructure
component, then `status` and `stop` from any shell.

`start` spawns `python -m devenv.proc.detached` in the checkout and hands it the specs on its
stdin (their environment and a database probe hold passwords: they never touch the disk or the
command line); that process is the very `Supervisor.run` of the foreground, which records
itself and its processes in the state folder's status file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devenv import poll
from devenv.errors import UserError
from devenv.proc import group
from devenv.proc import status as recorded_status
from devenv.proc.logs import lines_since
from devenv.proc.record import AlreadyRunning, Identity, Lock, StateWriteError
from devenv.proc.supervisor import ProcessSpec, Supervisor, lock_for

LOG_FILE = "supervisor.log"
# The exit codes by which the background supervisor says another one holds the state folder
# (EX_TEMPFAIL), or that it cannot write its status file (EX_CANTCREAT): `start` tells them
# from a crash without reading the log, which also quotes the processes.
EXIT_ALREADY_RUNNING = 75
EXIT_CANNOT_RECORD = 73
_REPO_ROOT = Path(__file__).resolve().parents[2]


class DetachedError(UserError):
    """The supervisor gave up; `failed` and `why` name the process whose start ended it, when
    one did (else the message quotes the supervisor's last lines)."""

    def __init__(self, message: str, failed: str | None = None, why: str | None = None):
        super().__init__(message)
        self.failed = failed
        self.why = why


@dataclass(frozen=True)
class LastExit:
    code: int
    at: float  # wall-clock time

    def __str__(self) -> str:
        """`SIGKILL 12s ago`, `exit 3 2m05s ago`."""
        what = recorded_status.describe_exit(self.code)
        what = what.removeprefix("killed by ").replace("exited with code", "exit")
        return f"{what} {recorded_status.duration(time.time() - self.at)} ago"


@dataclass(frozen=True)
class AppStatus:
    name: str
    pid: int | None
    uptime: float | None
    ready: bool
    restarts: int
    log_file: Path
    last_exit: LastExit | None = None


@dataclass(frozen=True)
class DetachedStatus:
    pid: int
    apps: list[AppStatus]


def start(
    specs: Sequence[ProcessSpec],
    state_dir: Path,
    *,
    stop_timeout: float = 5.0,
    timeout: float = 60.0,
    lock: Lock | None = None,
    cancel: threading.Event | None = None,
) -> DetachedStatus:
    """Start the supervisor in the background and wait until every process is ready. Raises
    AlreadyRunning, StateWriteError, or DetachedError if it gives up. `lock`: the supervisor's
    lock, taken by the caller; the background supervisor inherits it. `cancel` set (another
    start failed, Ctrl-C): the supervisor is stopped and poll.Cancelled raised."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    running = status(state_dir)
    if running is not None:
        raise AlreadyRunning(f"already running (supervisor pid {running.pid}); stop it first")
    config = {"stop_timeout": stop_timeout, "apps": [s.to_json() for s in specs]}
    log = state_dir / LOG_FILE
    offset = log.stat().st_size if log.exists() else 0
    argv = [sys.executable, "-m", "devenv.proc.detached", "--state-dir", str(state_dir)]
    handed = (lock.fd,) if lock else ()
    argv += [f"--lock-fd={fd}" for fd in handed]
    proc = group.spawn(
        argv, log_file=log, cwd=_REPO_ROOT, feed=json.dumps(config).encode(), pass_fds=handed
    )

    def all_ready() -> bool:
        current = status(state_dir)
        return bool(current and current.pid == proc.pid and len(current.apps) == len(specs)
                    and all(a.ready for a in current.apps))  # fmt: skip

    try:
        ready = poll.until(
            all_ready, timeout, interval=0.05, cancel=cancel, alive=lambda: proc.poll() is None
        )
    except (KeyboardInterrupt, poll.Cancelled):
        # Stopped by its pid: it may not have recorded itself yet.
        _stop_supervisor(proc.pid, state_dir, stop_timeout + 5)
        raise
    if ready:
        return status(state_dir) or DetachedStatus(proc.pid, [])
    if proc.poll() is None:
        stop(state_dir, timeout=stop_timeout + 5)
    lines = lines_since(log, offset, 20)
    tail = "\n".join(f"    {line}" for line in lines)
    if proc.poll() == EXIT_ALREADY_RUNNING:
        raise AlreadyRunning(tail.strip())
    if proc.poll() == EXIT_CANNOT_RECORD and lines:
        raise StateWriteError(lines[-1].removeprefix("error: "))
    failed = _outcome(state_dir, proc.pid)
    raise DetachedError(
        f"the detached supervisor did not get every app ready:\n{tail}",
        failed.get("name"),
        failed.get("why"),
    )


def _outcome(state_dir: Path, pid: int) -> dict[str, str]:
    """What the supervisor `pid` left in its status file when it gave up (then removed)."""
    recorded = recorded_status.read(state_dir) or {}
    supervisor = Identity.from_json(recorded.get("supervisor"))
    if supervisor is None or supervisor.pid != pid:
        return {}
    recorded_status.remove(state_dir)
    failed = recorded.get("failed")
    return failed if isinstance(failed, dict) else {}


def status(state_dir: Path) -> DetachedStatus | None:
    """What the supervisor recorded, if it is running (None otherwise)."""
    recorded = recorded_status.read(state_dir)
    if recorded is None:
        return None
    supervisor = Identity.from_json(recorded.get("supervisor"))
    if supervisor is None or not supervisor.alive():
        return None
    now = time.time()
    apps = []
    for name, app in recorded.get("apps", {}).items():
        # A process that died a moment ago is gone, though its supervisor has not noticed yet.
        identity = Identity.from_json(app.get("identity"))
        alive = identity is not None and identity.alive()
        last = app.get("last_exit")
        apps.append(
            AppStatus(
                name=name,
                pid=identity.pid if identity and alive else None,
                uptime=now - app["started_at"] if app.get("started_at") and alive else None,
                ready=bool(app.get("ready")) and alive,
                restarts=int(app.get("restarts", 0)),
                log_file=Path(app["log_file"]),
                last_exit=LastExit(int(last["code"]), float(last["at"])) if last else None,
            )
        )
    return DetachedStatus(pid=supervisor.pid, apps=apps)


def stop(state_dir: Path, timeout: float = 15.0) -> bool:
    """SIGTERM the supervisor, which stops its apps. If it is gone or does not exit within
    `timeout`, stop its group and any recorded app still alive ourselves. True if it ran."""
    current = status(state_dir)
    if current is None:
        recorded_status.stop_orphans(state_dir, 5)
        return False
    _stop_supervisor(current.pid, state_dir, timeout)
    return True


def _stop_supervisor(pid: int, state_dir: Path, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not group.wait_gone(pid, timeout):
        group.stop_group(pid, 5)
        recorded_status.stop_orphans(state_dir, 5)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devenv.proc.detached",
        description="Supervise the processes of the JSON specs read from stdin until signalled.",
    )
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--echo", action="store_true", help="also echo app lines (foreground use)")
    parser.add_argument("--lock-fd", type=int, help="the supervisor's lock, taken by the parent")
    args = parser.parse_args(argv)
    config = json.loads(sys.stdin.read())
    supervisor = Supervisor(
        [ProcessSpec.from_json(app) for app in config["apps"]],
        echo=args.echo,
        color=False,
        state_dir=args.state_dir,
        stop_timeout=float(config.get("stop_timeout", 5.0)),
        lock=None if args.lock_fd is None else adopt_lock(args.state_dir, args.lock_fd),
    )
    try:
        code = supervisor.run()
    except AlreadyRunning as exc:
        print(f"error: {exc}", flush=True)
        return EXIT_ALREADY_RUNNING
    except StateWriteError as exc:  # before it started anything: nothing to stop
        print(f"error: {exc}", flush=True)
        return EXIT_CANNOT_RECORD
    if supervisor.unrecorded is not None:  # it stopped what it could not record
        print(f"error: {supervisor.unrecorded}", flush=True)
        return EXIT_CANNOT_RECORD
    return code


def adopt_lock(state_dir: Path, fd: int) -> Lock:
    """The supervisor's lock as `start` handed it down."""
    lock = lock_for(state_dir)
    return Lock.adopt(lock.path, lock.what, fd)


if __name__ == "__main__":
    sys.exit(main())
