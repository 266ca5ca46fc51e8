"""Log files: their last lines, and `Tail`, the one follower of a file as it grows.

`inv logs` shows the last lines of each file prefixed with its name and, with --follow, keeps
following them; the supervisor follows each child's log to echo it. A missing file is shown as
empty, not an error.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

_BLOCK = 64 * 1024
_POLL = 0.05  # how often a follower looks for new lines


def last_lines(path: Path, count: int = 20) -> list[str]:
    """The last `count` lines of `path`, read from the end so a big log costs little."""
    try:
        with path.open("rb") as f:
            end = f.seek(0, os.SEEK_END)
            data = b""
            pos = end
            while pos > 0 and data.count(b"\n") <= count:
                step = min(_BLOCK, pos)
                pos -= step
                f.seek(pos)
                data = f.read(step) + data
    except FileNotFoundError:
        return []
    return data.decode(errors="replace").splitlines()[-count:] if count > 0 else []


def tail(files: Mapping[str, Path], lines: int, follow: bool, out: TextIO) -> None:
    """Print the last `lines` of every file as `name | line`; with `follow`, keep printing what
    they append until interrupted (Ctrl-C ends it quietly)."""
    width = max((len(name) for name in files), default=0)
    lock = threading.Lock()

    def show(name: str, line: str) -> None:
        with lock:
            out.write(f"{name:<{width}} | {line}\n")
            out.flush()

    followers = []
    for name, path in files.items():
        for line in last_lines(path, lines):
            show(name, line)
        if follow:
            followers.append(Tail(_fixed(path), functools.partial(show, name)))
    if not followers:
        return
    for follower in followers:
        follower.start()
    try:
        threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        for follower in followers:
            follower.finish()


def _fixed(path: Path) -> Callable[[], Path]:
    return lambda: path


class Tail(threading.Thread):
    """Follows the file `path()` names from its current end, calling `emit` per line. `path` is
    asked again each round, so a process swapped onto another log file is followed too."""

    def __init__(self, path: Callable[[], Path], emit: Callable[[str], None]) -> None:
        super().__init__(daemon=True)
        self._path = path
        self._emit = emit
        self._done = threading.Event()
        self._following = path()
        self._pos = self._following.stat().st_size if self._following.exists() else 0

    def finish(self) -> None:
        """Echo what is left, then end."""
        self._done.set()
        self.join(timeout=2)

    def run(self) -> None:
        pending = b""
        while True:
            finishing = self._done.is_set()
            path = self._path()
            if path != self._following:
                self._following, self._pos, pending = path, 0, b""
            chunk = self._read(path)
            *complete, pending = (pending + chunk).split(b"\n")
            for raw in complete:
                self._emit(raw.decode(errors="replace").rstrip("\r"))
            if finishing:
                if pending:
                    self._emit(pending.decode(errors="replace"))
                return
            if not chunk:
                self._done.wait(_POLL)

    def _read(self, path: Path) -> bytes:
        try:
            with path.open("rb") as f:
                if os.fstat(f.fileno()).st_size < self._pos:  # truncated: start over
                    self._pos = 0
                f.seek(self._pos)
                data = f.read()
        except FileNotFoundError:
            return b""
        self._pos += len(data)
        return data


def lines_since(path: Path, offset: int, count: int = 10) -> list[str]:
    """The last `count` lines written to `path` after byte `offset` (one process run)."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    return data.decode(errors="replace").splitlines()[-count:]
