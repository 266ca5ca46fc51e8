"""Prefixed, coloured, aligned output of supervised processes (`app | ...`, `ai  | ...`).

Each child writes straight into its own log file, so the file is complete even if the
supervisor dies; a `Tail` follows that file and echoes new lines to the terminal.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

_COLOURS = ("36", "35", "33", "32", "34", "31")
_POLL = 0.05


class Console:
    """Writes whole lines under one lock so lines of different processes never interleave."""

    def __init__(self, names: Sequence[str], out: TextIO, color: bool | None = None) -> None:
        self.out = out
        self.width = max((len(name) for name in names), default=0)
        if color is None:
            color = out.isatty() and "NO_COLOR" not in os.environ
        self.color = color
        self._colours = {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(names)}
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        prefix = f"{name:<{self.width}} |"
        if self.color:
            prefix = f"\033[{self._colours.get(name, '0')}m{prefix}\033[0m"
        self._write(f"{prefix} {text}")

    def say(self, text: str) -> None:
        """A message of the supervisor itself, bold on a colour terminal."""
        self._write(f"\033[1m{text}\033[0m" if self.color else text)

    def _write(self, text: str) -> None:
        with self._lock:
            self.out.write(text + "\n")
            self.out.flush()


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
