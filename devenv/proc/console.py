"""Prefixed, coloured, aligned output of supervised processes (`app | ...`, `ai  | ...`).

Each child writes straight into its own log file, so the file is complete even if the
supervisor dies; a `logs.Tail` follows that file and echoes new lines through a `Console`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TextIO

_COLOURS = ("36", "35", "33", "32", "34", "31")


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
