"""The automation behind tasks.py and noxfile.py."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def requirements_installed() -> Iterator[None]:
    """Turn a package missing from the environment (a .venv older than pyproject.toml, after
    a pull) into one line naming it and the fix, instead of a traceback."""
    try:
        yield
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] == "devenv":
            raise
        raise SystemExit(
            f"error: the package {exc.name!r} is missing from {sys.prefix}: run "
            "`./scripts/bootstrap` to bring it up to date with pyproject.toml"
        ) from None
