"""`inv status --watch`'s redrawing (devenv.screen), read back through a terminal emulator:
what the screen shows after each frame, not which escape codes were written."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence

import pyte
import pytest

from devenv import screen

COLUMNS, LINES = 60, 12


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def frames(*tables: Sequence[str], then: BaseException | None = None) -> Callable[[], list[str]]:
    """A frame function giving `tables` one after another, then raising `then` (Ctrl-C)."""
    left = [list(table) for table in tables]

    def frame() -> list[str]:
        if not left:
            raise then or KeyboardInterrupt
        return left.pop(0)

    return frame


@pytest.fixture(autouse=True)
def terminal_size(monkeypatch: pytest.MonkeyPatch) -> None:
    size = os.terminal_size((COLUMNS, LINES))
    monkeypatch.setattr(screen.shutil, "get_terminal_size", lambda: size)


def shown(out: str) -> pyte.Screen:
    terminal = pyte.Screen(COLUMNS, LINES)
    pyte.Stream(terminal).feed(out.replace("\n", "\r\n"))  # as a tty's output processing does
    return terminal


def test_each_frame_replaces_the_last_in_place_and_ctrl_c_ends_normally() -> None:
    out = Tty()
    three = ["HEADER", "db    running", "bus   running"]
    two = ["HEADER", "db    stopped"]  # a row less: what was below must not stay behind
    screen.watch(frames(three, two), interval=0, out=out)  # returns: Ctrl-C is the way out
    terminal = shown(out.getvalue())
    lines = [line.rstrip() for line in terminal.display]
    assert lines[0].endswith("(Ctrl-C stops)"), lines
    assert lines[1:] == ["HEADER", "db    stopped", *[""] * (LINES - 3)]
    assert not terminal.cursor.hidden  # hidden while it draws, given back at the end


def test_a_line_wider_than_the_terminal_is_cut_rather_than_wrapped() -> None:
    out = Tty()
    wide = ["x" * (COLUMNS + 20), "next"]
    screen.watch(frames(wide, wide), interval=0, out=out)
    lines = [line.rstrip() for line in shown(out.getvalue()).display]
    assert lines[1:4] == ["x" * COLUMNS, "next", ""]


def test_into_a_file_the_tables_follow_one_another_without_escape_codes() -> None:
    out = io.StringIO()
    screen.watch(frames(["HEADER", "one"], ["HEADER", "two"]), interval=0, out=out)
    tables = out.getvalue().split("\n\n")
    assert [table.splitlines()[1:] for table in tables] == [["HEADER", "one"], ["HEADER", "two"]]
    assert "\033" not in out.getvalue()


def test_a_failing_frame_still_gives_the_cursor_back() -> None:
    out = Tty()
    with pytest.raises(RuntimeError, match="engine gone"):
        screen.watch(frames(["HEADER"], then=RuntimeError("engine gone")), interval=0, out=out)
    assert not shown(out.getvalue()).cursor.hidden
