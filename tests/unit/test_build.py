"""devenv.build against real tools: `go build` of a fixture module, venvs made by uv or pip."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devenv import build

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "goapp"

pytestmark = pytest.mark.timeout(300)
needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="go is not installed")


@pytest.fixture
def goapp(tmp_path: Path) -> Path:
    module = tmp_path / "goapp"
    shutil.copytree(FIXTURE, module)
    return module


def _build(module: Path, **ldflags_vars: str) -> build.BuildResult:
    vars_ = {f"main.{key}": value for key, value in ldflags_vars.items()}
    return build.go_build(module, ".", module.parent / "bin" / "goapp", ldflags_vars=vars_)


@needs_go
def test_version_is_stamped_into_the_binary(goapp: Path) -> None:
    result = _build(goapp, version="1.2.3", commit="abc123-dirty", buildTime="2026-01-02T03:04:05Z")

    shown = subprocess.run(
        [str(result.output), "-version"], capture_output=True, text=True, check=True
    ).stdout
    assert shown.strip() == "version=1.2.3 commit=abc123-dirty buildTime=2026-01-02T03:04:05Z"


@needs_go
def test_the_command_run_is_echoed(goapp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build.go_build(goapp, ".", goapp / "out", ldflags_vars={"main.version": "9"}, echo=sys.stdout)

    echoed = capsys.readouterr().out
    assert echoed.startswith("$ ")
    assert "build -v -o" in echoed
    assert "-ldflags '-X main.version=9' ." in echoed


@needs_go
def test_second_build_recompiles_nothing_and_an_edit_only_its_package(goapp: Path) -> None:
    first = _build(goapp, version="1")
    second = _build(goapp, version="1")
    (goapp / "message.go").write_text('package main\n\nconst message = "edited"\n')
    third = _build(goapp, version="1")

    assert second.rebuilt == []
    assert second.duration < first.duration or first.rebuilt == []
    assert third.rebuilt == ["goapp"]  # not net/http and the rest: Go's build cache kept them


@needs_go
def test_compile_error_carries_the_compilers_file_and_line(goapp: Path) -> None:
    (goapp / "message.go").write_text("package main\n\nconst message = notDeclared\n")

    with pytest.raises(build.BuildError) as failure:
        _build(goapp, version="1")

    assert "./message.go:3:17: undefined: notDeclared" in failure.value.output
    assert "./message.go:3:17" in str(failure.value)


@needs_go
def test_go_stale_is_truthful(goapp: Path) -> None:
    target = build.GoTarget(goapp, ".", goapp.parent / "bin" / "goapp")
    assert build.go_stale(target) == f"{target.output}: not built"

    _build(goapp, version="1")
    assert build.go_stale(target) is None

    source = goapp / "message.go"
    later = target.output.stat().st_mtime + 5
    os.utime(source, (later, later))
    assert build.go_stale(target) == f"{target.output}: older than {source}"


def test_stamp_vars_name_the_commit_and_the_dirty_flag(tmp_path: Path) -> None:
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "f.txt").write_text("one\n")
    subprocess.run([*git, "add", "f.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    sha = subprocess.run(
        [*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()

    clean = build.stamp_vars(tmp_path)
    (tmp_path / "f.txt").write_text("two\n")
    dirty = build.stamp_vars(tmp_path)

    assert clean["main.commit"] == sha
    assert dirty["main.commit"] == f"{sha}-dirty"
    assert dirty["main.version"].endswith("-dirty")
    assert dirty["main.buildTime"].endswith("Z")


def test_missing_go_is_one_line_naming_version_and_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(build.ToolchainError) as failure:
        build.go_build(FIXTURE, ".", tmp_path / "out", ldflags_vars={})

    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("go not found: Go >= 1.22 is needed;")
    assert "https://go.dev/dl/" in message


@needs_go
def test_too_old_go_is_named(goapp: Path) -> None:
    (goapp / "go.mod").write_text("module goapp\n\ngo 9.99\n")

    with pytest.raises(build.ToolchainError, match=r"Go >= 9\.99 is needed"):
        build.require_go(goapp)


def test_too_old_python_is_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "python3.9"
    fake.write_text("#!/bin/sh\necho 3.9\n")
    fake.chmod(0o755)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "svc"\nversion = "0"\n')

    with pytest.raises(build.ToolchainError) as failure:
        build.ensure_venv(tmp_path, tmp_path / "venv", python=fake)

    message = str(failure.value)
    assert "\n" not in message
    assert "python 3.9" in message
    assert "Python >= 3.11 is needed" in message
    assert "uv python install" in message


# --- venvs ---------------------------------------------------------------------------------

PYPROJECT = """\
[project]
name = "svc"
version = "0"
dependencies = [{deps}]

[dependency-groups]
test = ["{testlib}", {{include-group = "extra"}}]
extra = []
"""


def _wheel(folder: Path, name: str) -> str:
    """A one-module wheel on disk, as a PEP 508 direct reference: installs need no index."""
    dist = f"{name}-1.0.dist-info"
    files = {
        f"{name}.py": f"NAME = {name!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(text)},{len(text)}" for path, text in files.items()]
    files[f"{dist}/RECORD"] = "\n".join([*record, f"{dist}/RECORD,,"]) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return f"{name} @ {wheel.as_uri()}"


def _digest(text: str) -> str:
    raw = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _service(tmp_path: Path, runtime: bool) -> build.VenvTarget:
    service = tmp_path / "svc"
    service.mkdir(exist_ok=True)
    deps = f'"{_wheel(tmp_path / "wheels", "runlib")}"' if runtime else ""
    testlib = _wheel(tmp_path / "wheels", "testlib")
    (service / "pyproject.toml").write_text(PYPROJECT.format(deps=deps, testlib=testlib))
    return build.VenvTarget(service, tmp_path / "venv")


def _imports(venv: Path, module: str) -> bool:
    probe = subprocess.run([str(venv / "bin" / "python"), "-c", f"import {module}"], check=False)
    return probe.returncode == 0


@pytest.mark.skipif(build.find_uv() is None, reason="uv is not installed")
def test_venv_is_built_once_and_again_only_when_pyproject_changes(tmp_path: Path) -> None:
    target = _service(tmp_path, runtime=True)
    assert build.venv_stale(target) == f"{target.venv_dir}: no venv"

    first = build.ensure_venv(target.service_dir, target.venv_dir)
    assert first.rebuilt
    assert _imports(target.venv_dir, "runlib")
    assert _imports(target.venv_dir, "testlib")  # the test group came too
    assert build.venv_stale(target) is None
    assert build.stale(venvs=[target]) == []

    again = build.ensure_venv(target.service_dir, target.venv_dir)
    assert not again.rebuilt

    _service(tmp_path, runtime=False)  # runlib dropped from the declaration
    assert "changed since install" in (build.venv_stale(target) or "")
    assert len(build.stale(venvs=[target])) == 1
    changed = build.ensure_venv(target.service_dir, target.venv_dir)
    assert changed.rebuilt
    assert not _imports(target.venv_dir, "runlib")
    assert _imports(target.venv_dir, "testlib")
    assert build.venv_stale(target) is None


def test_without_uv_the_stdlib_venv_and_pip_are_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "find_uv", lambda: None)
    target = _service(tmp_path, runtime=True)

    result = build.ensure_venv(target.service_dir, target.venv_dir, echo=sys.stdout)

    assert result.rebuilt
    echoed = capsys.readouterr().out
    assert f"-m venv --clear {target.venv_dir}" in echoed
    assert f"{target.venv_dir / 'bin' / 'python'} -m pip install 'runlib @ file://" in echoed
    assert _imports(target.venv_dir, "runlib")
    assert _imports(target.venv_dir, "testlib")
    assert build.venv_stale(target) is None
    assert not build.ensure_venv(target.service_dir, target.venv_dir).rebuilt


def test_declared_requirements_expand_include_group(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "s"\nversion = "0"\ndependencies = ["fastapi>=0.115"]\n'
        '[dependency-groups]\ntest = ["pytest", {include-group = "typing"}]\n'
        'typing = ["mypy"]\nlint = [{include-group = "lint"}]\n'
    )

    assert build.declared_requirements(pyproject) == ["fastapi>=0.115", "pytest", "mypy"]
    assert build.declared_requirements(pyproject, group="absent") == ["fastapi>=0.115"]
    with pytest.raises(build.BuildError, match="cycle: lint -> lint"):
        build.declared_requirements(pyproject, group="lint")


@needs_go
@pytest.mark.skipif(build.find_uv() is None, reason="uv is not installed")
def test_build_all_says_what_it_built(tmp_path: Path, goapp: Path) -> None:
    target = build.GoTarget(goapp, ".", tmp_path / "bin" / "goapp")
    service = _service(tmp_path, runtime=False)

    first = build.build_all([target], [service], repo=tmp_path, echo=None)
    # The build log keeps the list of what the build that compiled compiled.
    assert "goapp" in target.output.with_name("goapp.build.log").read_text()
    second = build.build_all([target], [service], repo=tmp_path, echo=None)

    assert re.fullmatch(rf"built {target.output} in \d+\.\d\ds \(recompiled: goapp\)", first[0])
    assert re.fullmatch(rf"venv {service.venv_dir}: rebuilt in \d+\.\ds", first[1])
    assert second[1] == f"venv {service.venv_dir}: up to date"
    assert build.stale([target], [service]) == []
    shown = subprocess.run(
        [str(target.output), "-version"], capture_output=True, text=True, check=True
    ).stdout
    assert shown.startswith("version=dev commit=unknown buildTime=")  # no git there: said so


def test_a_first_build_is_summed_up_in_a_few_words_the_list_kept_in_the_log(
    tmp_path: Path,
) -> None:
    # What `go build -v` prints on a fresh machine: downloads, then every package it compiles.
    output = "".join(f"go: downloading example.com/mod{i} v1.0.{i}\n" for i in range(12))
    output += "".join(f"internal/pkg{i}\n" for i in range(700))
    log = tmp_path / "platform.build.log"
    line = build.BuildResult(tmp_path / "platform", 36.0, output).summary(log)
    assert line == f"modules downloaded: 12, packages compiled: 700; the list is in {log}"
    small = build.BuildResult(tmp_path / "platform", 0.8, "platform/ingestion\nplatform/cmd\n")
    assert small.summary(log) == "recompiled: platform/ingestion, platform/cmd"
    assert build.BuildResult(tmp_path / "platform", 0.1, "").summary(log) == "nothing to recompile"


@needs_go
def test_a_long_build_says_how_far_it_got_while_it_runs(
    goapp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "PROGRESS_EVERY", 0.0)  # every build counts as long here
    (goapp / "message.go").write_text('package main\n\nconst message = "progress"\n')
    build.go_build(goapp, ".", goapp / "out", ldflags_vars={}, echo=sys.stdout)
    shown = capsys.readouterr().out
    assert "  building out: 0 modules downloaded, 1 packages compiled (" in shown
