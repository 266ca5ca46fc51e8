"""A command run on a terminal of its own (a pty that is its controlling terminal), typed at
as a user types: Ctrl-C is the byte 0x03, which the terminal turns into SIGINT for the
command's foreground process group. `screen()` is what a terminal would show afterwards."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time
from collections.abc import Callable, Mapping, Sequence

import pyte

from devenv.proc import group

COLUMNS, LINES = 200, 40
CTRL_C = b"\x03"


class Terminal:
    def __init__(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        pid, self.fd = pty.fork()
        if pid == 0:  # the child: the pty is its stdin, stdout, stderr and controlling tty
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
            os.execvpe(argv[0], list(argv), dict(env))  # noqa: S606 (no shell: argv as given)
        self.pid = pid
        self.output = b""
        self.code: int | None = None

    def read_until(self, done: Callable[[bytes], bool], timeout: float) -> bool:
        """Read what the command writes until `done(all of it so far)`, it exits, or `timeout`."""
        deadline = time.monotonic() + timeout
        while not done(self.output) and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: the command and every holder of the terminal are gone
                chunk = b""
            if not chunk:
                break
            self.output += chunk
        return done(self.output)

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def wait(self, timeout: float) -> int | None:
        """Its exit code once it has exited within `timeout` (None: still running)."""
        deadline = time.monotonic() + timeout
        while self.code is None and time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
            else:
                self.read_until(lambda _: False, 0.05)  # drain, so it never blocks writing
        return self.code

    def close(self) -> None:
        """Stop whatever of it still runs (its session's group and descendants)."""
        if self.code is None:
            group.stop_group(self.pid, 5)
            self.wait(5)
        os.close(self.fd)

    def left_running(self) -> list[int]:
        return [p.pid for p in group.group_members(self.pid)]

    def screen(self) -> list[str]:
        shown = pyte.Screen(COLUMNS, LINES)
        pyte.ByteStream(shown).feed(self.output)
        return [line.rstrip() for line in shown.display]
