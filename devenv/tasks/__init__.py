"""Invoke namespaces, one module each; `tasks.py` assembles them."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

from invoke.exceptions import Exit

from devenv.errors import UserError
from devenv.proc import signals


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A user error becomes one line on stderr and exit code 1, not a traceback; SIGTERM and
    SIGHUP take Ctrl-C's way out."""
    try:
        with terminations_as_interrupts():
            yield
    except UserError as exc:
        raise Exit(f"error: {exc}", code=1) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", code=130) from None


@contextlib.contextmanager
def terminations_as_interrupts() -> Iterator[None]:
    """SIGTERM and SIGHUP (a closed terminal) raise KeyboardInterrupt, as Ctrl-C does, so a
    command stopped by any of them stops what it started so far instead of leaving it running.
    A repeat is ignored: it must not cut that stop short."""
    caught = (signal.SIGTERM, signal.SIGHUP)

    def ignore(_signum: int, _frame: FrameType | None) -> None:
        pass

    def interrupt(_signum: int) -> None:
        for sig in caught:
            signal.signal(sig, ignore)  # a handler, not SIG_IGN: children must not inherit it
        raise KeyboardInterrupt

    with signals.handled(interrupt, caught):
        yield
