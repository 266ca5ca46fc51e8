"""Show log files: the last lines of each, prefixed with its name, then optionally follow them.

Used by `logs` of the backends; a missing file is shown as empty, not an error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

_BLOCK = 64 * 1024


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

    def show(name: str, line: str) -> None:
        out.write(f"{name:<{width}} | {line}\n")

    positions: dict[str, int] = {}
    for name, path in files.items():
        for line in last_lines(path, lines):
            show(name, line)
        positions[name] = path.stat().st_size if path.exists() else 0
    out.flush()
    if not follow:
        return
    pending = dict.fromkeys(files, b"")
    try:
        while True:
            grew = False
            for name, path in files.items():
                chunk = _read_from(path, positions, name)
                if not chunk:
                    continue
                grew = True
                *complete, pending[name] = (pending[name] + chunk).split(b"\n")
                for raw in complete:
                    show(name, raw.decode(errors="replace"))
            out.flush()
            if not grew:
                time.sleep(0.2)  # polling interval of the follow loop, not a wait for readiness
    except KeyboardInterrupt:
        return


def _read_from(path: Path, positions: dict[str, int], name: str) -> bytes:
    try:
        with path.open("rb") as f:
            if os.fstat(f.fileno()).st_size < positions[name]:
                positions[name] = 0  # truncated or recreated: start over
            f.seek(positions[name])
            data = f.read()
    except FileNotFoundError:
        return b""
    positions[name] += len(data)
    return data
