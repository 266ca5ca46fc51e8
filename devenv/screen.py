"""A table shown again every few seconds until Ctrl-C (`inv status --watch`).

On a terminal each frame replaces the last in place: the cursor moves back up to the first
line and every line is rewritten and cleared to its end, all in one write, so the screen
never goes blank between frames (no flicker). Anywhere else (a pipe, a log file) the frames
follow one another.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TextIO

HIDE_CURSOR, SHOW_CURSOR = "\033[?25l", "\033[?25h"
CLEAR_TO_LINE_END, CLEAR_BELOW = "\033[K", "\033[J"


def watch(frame: Callable[[], Sequence[str]], interval: float, out: TextIO) -> None:
    """Show `frame()`'s lines every `interval` seconds, under a line saying when, until Ctrl-C
    (or SIGTERM, which the tasks turn into one), which ends it normally."""
    screen = InPlace(out) if out.isatty() else Appended(out)
    try:
        while True:
            started = time.monotonic()
            lines = frame()
            title = f"every {interval:g}s, {datetime.now():%H:%M:%S} (Ctrl-C stops)"
            screen.show([title, *lines])
            time.sleep(max(0.0, interval - (time.monotonic() - started)))
    except KeyboardInterrupt:
        pass
    finally:
        screen.close()


class InPlace:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = 0  # lines of the last frame; the cursor waits below them

    def show(self, lines: Sequence[str]) -> None:
        # A line longer than the terminal would wrap onto two and throw the count off.
        width = shutil.get_terminal_size().columns
        back = f"\r\033[{self.shown}A" if self.shown else HIDE_CURSOR
        text = "".join(f"{line[:width]}{CLEAR_TO_LINE_END}\n" for line in lines)
        self.out.write(back + text + CLEAR_BELOW)
        self.out.flush()
        self.shown = len(lines)

    def close(self) -> None:
        self.out.write(SHOW_CURSOR)
        self.out.flush()


class Appended:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.shown = 0

    def show(self, lines: Sequence[str]) -> None:
        self.out.write(("\n" if self.shown else "") + "".join(f"{line}\n" for line in lines))
        self.out.flush()
        self.shown += 1

    def close(self) -> None:
        self.out.flush()
