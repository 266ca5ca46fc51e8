"""The state folder: only a folder this project created is ever written into or deleted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devenv import state
from devenv.state import UnsafeStateDir


def test_a_new_folder_is_created_private_and_marked(tmp_path: Path) -> None:
    folder = state.claim(tmp_path / "new" / "state")
    assert folder.stat().st_mode & 0o777 == 0o700
    assert state.is_ours(folder)
    state.remove(folder)
    assert not folder.exists()


def test_an_existing_folder_with_content_is_never_adopted_nor_deleted(tmp_path: Path) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("the user's work")
    with pytest.raises(UnsafeStateDir, match="existing folder this project did not create"):
        state.claim(tmp_path)
    with pytest.raises(UnsafeStateDir, match="not deleting a folder we did not create"):
        state.remove(tmp_path)
    assert precious.read_text() == "the user's work"


def test_an_empty_marker_outside_the_checkout_is_not_trusted(tmp_path: Path) -> None:
    # Earlier versions touched an empty marker into whatever STATE_DIR named (/tmp, say).
    (tmp_path / state.MARKER).touch()
    (tmp_path / "other.txt").write_text("not ours")
    with pytest.raises(UnsafeStateDir):
        state.remove(tmp_path)
    assert (tmp_path / "other.txt").exists()


def test_remove_does_not_follow_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    folder = state.claim(tmp_path / "state")
    (folder / "link").symlink_to(outside)
    state.remove(folder)
    assert not folder.exists()
    assert (outside / "keep.txt").read_text() == "keep"


def test_a_symlinked_state_dir_is_refused(tmp_path: Path) -> None:
    real = state.claim(tmp_path / "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    with pytest.raises(UnsafeStateDir):
        state.remove(link)
    assert real.exists()


def test_home_and_root_are_refused_even_when_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in (Path.home(), Path("/")):
        with pytest.raises(UnsafeStateDir):
            state.remove(folder)
    assert os.path.isdir(Path.home())
