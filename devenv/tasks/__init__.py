"""Invoke namespaces, one module each; `tasks.py` assembles them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from invoke.exceptions import Exit

from devenv.backends.base import InfraError
from devenv.build import BuildError, ToolchainError
from devenv.ports import PortBusyError
from devenv.proc.detached import DetachedError
from devenv.proc.record import AlreadyRunning, StateWriteError
from devenv.settings import SettingsError

USER_ERRORS = (
    SettingsError,
    InfraError,
    PortBusyError,
    BuildError,
    ToolchainError,
    DetachedError,
    AlreadyRunning,
    StateWriteError,
)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """A user error becomes one line on stderr and exit code 1, not a traceback."""
    try:
        yield
    except USER_ERRORS as exc:
        raise Exit(f"error: {exc}", code=1) from None
    except KeyboardInterrupt:
        raise Exit("interrupted", code=130) from None
