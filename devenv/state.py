"""The state folder (STATE_DIR): created by this project, marked, private, and the only place
`inv clean` deletes.

A folder is ours when we created it (or found it empty) and wrote the marker into it; a folder
that existed with something else in it is refused, so `STATE_DIR=/tmp` or `STATE_DIR=~` can
never be adopted, let alone deleted. `settings` already refuses `/`, `$HOME`, the checkout and
its ancestors; `remove` checks that again, right before deleting, and never follows a symlink
out of the folder.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from devenv.proc.record import Lock, write_atomic
from devenv.settings import REPO_ROOT, SettingsError, forbidden_state_dir

MARKER = ".devenv-state"
MARKER_TEXT = "created by platform-devenv; `inv clean --yes` deletes this folder\n"
BACKEND_FILE = "backend"


class UnsafeStateDir(SettingsError):
    """The state folder is not one this project may write into or delete."""


def claim(state_dir: Path) -> Path:
    """Make `state_dir` ours (create it 0700 and mark it) or refuse it; returns it."""
    _refuse_forbidden(state_dir)
    if state_dir.is_symlink():
        raise UnsafeStateDir(f"STATE_DIR={state_dir} is a symlink: point STATE_DIR at a folder")
    if state_dir.is_dir() and not is_ours(state_dir) and any(state_dir.iterdir()):
        raise UnsafeStateDir(
            f"STATE_DIR={state_dir} is an existing folder this project did not create: "
            "set STATE_DIR to a new folder (default .state)"
        )
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state_dir.chmod(0o700)
    if not is_ours(state_dir):
        write_atomic(state_dir / MARKER, MARKER_TEXT, mode=0o644)
    return state_dir


def is_ours(state_dir: Path) -> bool:
    marker = state_dir / MARKER
    if marker.is_symlink() or not marker.is_file():
        return False
    text = marker.read_text(errors="replace")
    # An empty marker was written by earlier versions, which marked any folder they used: it
    # is trusted only inside the checkout (the default .state), never elsewhere.
    return text == MARKER_TEXT or (text == "" and _inside_repo(state_dir))


def remove(state_dir: Path) -> None:
    """Delete the state folder, if it is ours; symlinks inside are removed, not followed."""
    _refuse_forbidden(state_dir)
    if not state_dir.exists():
        return
    if state_dir.is_symlink() or not is_ours(state_dir):
        raise UnsafeStateDir(
            f"{state_dir} has no {MARKER} marker of this project: not deleting a folder "
            "we did not create (delete it yourself if it is really ours)"
        )
    shutil.rmtree(state_dir)


def lock(state_dir: Path) -> Lock:
    """The lock a command holds while it starts or stops the infrastructure of `state_dir`."""
    return Lock(state_dir / ".lock", "another `inv up`/`inv down` of this state folder")


def recorded_backend(state_dir: Path) -> str | None:
    try:
        name = (state_dir / BACKEND_FILE).read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return name or None


def record_backend(state_dir: Path, name: str) -> None:
    write_atomic(state_dir / BACKEND_FILE, name + "\n")


def forget_backend(state_dir: Path) -> None:
    (state_dir / BACKEND_FILE).unlink(missing_ok=True)


def _refuse_forbidden(state_dir: Path) -> None:
    reason = forbidden_state_dir(state_dir)
    if reason:
        raise UnsafeStateDir(f"STATE_DIR={state_dir} {reason}")


def _inside_repo(path: Path) -> bool:
    resolved = Path(os.path.realpath(path))
    return resolved != REPO_ROOT and resolved.is_relative_to(REPO_ROOT)
