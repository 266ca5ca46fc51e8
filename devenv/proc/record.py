"""Which processes are ours, written down so that a later command, or another shell, finds them.

A record names a process by the kernel's own identity: its pid, its start time in clock ticks
since boot (`/proc/<pid>/stat`) and the boot it belongs to (`/proc/sys/kernel/random/boot_id`).
A wall-clock step (NTP after resume, a VM restore) changes none of them, and a recycled pid or
a copied state folder cannot match. Records are written atomically (temporary file, fsync,
rename) and readable by their owner only; a failed write raises `StateWriteError`, so the
caller stops what it just started instead of leaving it untracked.

`Lock` is the exclusive lock a command holds on a state folder while it changes it: the
kernel drops it when the holder dies, so a killed command never leaves it held.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from devenv.errors import UserError

_PROC = Path("/proc")


class StateWriteError(UserError, OSError):
    """A state file could not be written (disk full, read-only): the message says which."""


class AlreadyRunning(UserError):
    """Another command holds the lock: the message names its pid and what to do."""


@dataclass(frozen=True)
class Identity:
    pid: int
    start: int  # clock ticks after boot when the process started
    boot: str

    @classmethod
    def of(cls, pid: int) -> Identity | None:
        """The live process `pid` as the kernel knows it; None if it is gone or a zombie."""
        try:
            if _PROC.is_dir():
                stat = (_PROC / str(pid) / "stat").read_text()
                fields = stat[stat.rindex(")") + 2 :].split()
                if fields[0] in ("Z", "X"):
                    return None
                return cls(pid, int(fields[19]), _boot_id())
            proc = psutil.Process(pid)  # no /proc (macOS): the same facts through psutil
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return cls(pid, round(proc.create_time() * 100), str(psutil.boot_time()))
        except (OSError, ValueError, IndexError, psutil.Error):
            return None

    def alive(self) -> bool:
        """Still this very process (not a recycled pid, not a zombie)."""
        return Identity.of(self.pid) == self

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Identity | None:
        try:
            return cls(int(data["pid"]), int(data["start"]), str(data["boot"]))
        except (TypeError, KeyError, ValueError):
            return None


@dataclass(frozen=True)
class Record:
    """One process's record file: its identity plus whatever the owner adds (`extra`)."""

    path: Path

    def write(self, identity: Identity, **extra: Any) -> None:
        write_atomic(self.path, json.dumps({**extra, **identity.as_json()}))

    def read(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path.read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def identity(self) -> Identity | None:
        data = self.read()
        return Identity.from_json(data) if data is not None else self._legacy()

    def _legacy(self) -> Identity | None:
        """A bare pid, as versions before these records wrote, still names our process when
        that process started no later than the file was written (the rule of those versions)
        and its command line names the record's folder (a server's data or config there): a
        stack started before an upgrade can be stopped after it, and a copied state folder
        never makes an unrelated process ours."""
        try:
            text = self.path.read_text().strip()
            if not text.isdigit():
                return None
            proc = psutil.Process(int(text))
            home = str(self.path.parent)
            if proc.create_time() > self.path.stat().st_mtime + 1 or not any(
                home in arg for arg in proc.cmdline()
            ):
                return None
            return Identity.of(proc.pid)
        except (OSError, ValueError, psutil.Error):
            return None

    def running(self) -> Identity | None:
        """The recorded process, if it is still alive; None otherwise."""
        identity = self.identity()
        return identity if identity is not None and identity.alive() else None

    def is_stale(self) -> bool:
        return self.path.exists() and self.running() is None

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def write_atomic(path: Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` with `text` in one step: readers see the old file or the new one, never
    half of it. Raises StateWriteError (the old file is kept) when it cannot."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), mode)
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise _cannot_write(path, exc) from None


def _cannot_write(path: Path, exc: OSError) -> StateWriteError:
    return StateWriteError(
        f"could not write {path}: {exc.strerror} (free some disk space, or "
        "set STATE_DIR to a writable folder)"
    )


@dataclass
class Lock:
    """An exclusive `flock` on `path`, holding the holder's pid for the message of others."""

    path: Path
    what: str
    _fd: int | None = None

    def acquire(self, wait: bool) -> None:
        """Take the lock; with `wait`, queue behind the holder, else raise AlreadyRunning."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise _cannot_write(self.path, exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise AlreadyRunning(
                f"{self.what} is already running (pid {holder}); stop it first (`inv down`)"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def fd(self) -> int:
        """The open descriptor holding the lock, for a child to inherit (`adopt`)."""
        if self._fd is None:
            raise RuntimeError(f"{self.path} is not held")
        return self._fd

    @classmethod
    def adopt(cls, path: Path, what: str, fd: int) -> Lock:
        """The lock a parent took and handed down as `fd`: the flock belongs to the open file,
        so it stays held while either process has it open. Names this process as the holder."""
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, what, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    @contextlib.contextmanager
    def held(self, wait: bool = True) -> Iterator[None]:
        self.acquire(wait)
        try:
            yield
        finally:
            self.release()


def _boot_id() -> str:
    return (_PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
