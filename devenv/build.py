"""Builds: the Go binary (`go build`, version stamped with -ldflags) and one venv per Python
service (created again only when its dependency declaration changed).

Every external tool runs through `_run`, which echoes the command line first.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from devenv.errors import UserError

STAMP_NAME = ".devenv-deps.sha256"
MIN_PYTHON = (3, 11)
_DOWNLOADING = "go: downloading "
_NAMED = 3  # up to this many recompiled packages are named in the summary line
PROGRESS_EVERY = 5.0  # seconds between progress lines of a long build


class ToolchainError(UserError):
    """A tool is missing or too old; one-line message: tool, version needed, how to install."""


class BuildError(UserError):
    """The compiler or installer failed; `output` holds its own lines (file:line for Go)."""

    def __init__(self, message: str, output: str) -> None:
        super().__init__(f"{message}\n{output}".rstrip())
        self.output = output


@dataclass(frozen=True)
class BuildResult:
    output: Path
    duration: float
    compiler_output: str

    @property
    def rebuilt(self) -> list[str]:
        """Packages compiled or linked again (from `go build -v`); empty when nothing changed."""
        return [
            line
            for line in self.compiler_output.splitlines()
            if line.strip() and not line.startswith("go: ")
        ]

    @property
    def downloaded(self) -> list[str]:
        """Modules fetched for this build (`go: downloading m v`)."""
        return [line[len(_DOWNLOADING) :] for line in self.compiler_output.splitlines()
                if line.startswith(_DOWNLOADING)]  # fmt: skip

    def summary(self, log: Path) -> str:
        """What took the time, in a few words; the full list is in `log`."""
        if not self.rebuilt and not self.downloaded:
            return "nothing to recompile"
        if len(self.rebuilt) <= _NAMED and not self.downloaded:
            return f"recompiled: {', '.join(self.rebuilt)}"
        return (
            f"modules downloaded: {len(self.downloaded)}, packages compiled: "
            f"{len(self.rebuilt)}; the list is in {log}"
        )


@dataclass(frozen=True)
class VenvResult:
    venv_dir: Path
    python: Path
    rebuilt: bool
    duration: float


@dataclass(frozen=True)
class GoTarget:
    module_dir: Path
    package: str
    output: Path
    gcflags: str = ""  # e.g. "all=-N -l", a debugger's build


@dataclass(frozen=True)
class VenvTarget:
    service_dir: Path
    venv_dir: Path


# --- Go ------------------------------------------------------------------------------------


def go_build(
    module_dir: Path,
    package: str,
    output: Path,
    *,
    ldflags_vars: Mapping[str, str],
    strip: bool = False,
    gcflags: str = "",
    echo: TextIO | None = sys.stderr,
) -> BuildResult:
    """`go build -o output -ldflags "-X k=v ..." package` in `module_dir`. Go's build cache makes
    it incremental. `strip` drops the DWARF tables (no delve) to cut link time by about a third;
    `gcflags` go to the compiler (`all=-N -l` for a debugger). Raises BuildError carrying the
    compiler's lines on a compile error."""
    go = require_go(module_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    flags = [*(["-s", "-w"] if strip else []), *(f"-X {k}={v}" for k, v in ldflags_vars.items())]
    ldflags = " ".join(flags)
    # A stripped (reload) build carries our own stamp: Go's VCS stamping would only add git calls.
    vcs = ["-buildvcs=false"] if strip else []
    compiler = [f"-gcflags={gcflags}"] if gcflags else []
    cmd = [go, "build", "-v", *vcs, *compiler, "-o", str(output.resolve()), "-ldflags", ldflags,
           package]  # fmt: skip
    start = time.monotonic()
    proc = _run_with_progress(cmd, module_dir, echo, f"building {output.name}")
    duration = time.monotonic() - start
    if proc.returncode != 0:
        # Drop the package names -v printed before the compiler's own "# pkg" block.
        lines = proc.stdout.splitlines(keepends=True)
        first = next((i for i, line in enumerate(lines) if line.startswith("# ")), 0)
        raise BuildError(f"go build {package} failed in {module_dir}", "".join(lines[first:]))
    return BuildResult(output=output, duration=duration, compiler_output=proc.stdout)


def stamp_vars(repo_dir: Path, package_var: str = "main") -> dict[str, str]:
    """The -X values for `<package_var>.version/commit/buildTime`: git describe, the sha with a
    `-dirty` suffix when the work tree has changes, and the UTC build time. Two git calls, run
    at once: every reload build pays for them."""
    sha_call = _git_call(repo_dir, "rev-parse", "--short=12", "HEAD")
    version_call = _git_call(repo_dir, "describe", "--tags", "--always", "--dirty")
    sha, version = _git_answer(sha_call) or "unknown", _git_answer(version_call) or "dev"
    dirty = version.endswith("-dirty")
    return {
        f"{package_var}.version": version,
        f"{package_var}.commit": f"{sha}-dirty" if dirty else sha,
        f"{package_var}.buildTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def go_stale(target: GoTarget) -> str | None:
    """Why `target.output` is older than its sources (None when up to date). Compares mtimes with
    every non-standard package file `go list -deps` names, plus go.mod and go.sum."""
    if not target.output.exists():
        return f"{target.output}: not built"
    go = require_go(target.module_dir)
    fmt = (
        "{{if not .Standard}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}\n{{end}}"
        "{{range .EmbedFiles}}{{$d}}/{{.}}\n{{end}}{{end}}"
    )
    proc = _run([go, "list", "-deps", "-f", fmt, target.package], cwd=target.module_dir, echo=None)
    if proc.returncode != 0:
        return f"{target.package}: go list failed: {proc.stdout.strip()}"
    sources = [Path(line) for line in proc.stdout.splitlines() if line]
    sources += [target.module_dir / "go.mod", target.module_dir / "go.sum"]
    built = target.output.stat().st_mtime
    for source in sources:
        if source.exists() and source.stat().st_mtime > built:
            return f"{target.output}: older than {source}"
    return None


def require_go(module_dir: Path | None = None) -> str:
    """Path of `go`, at least the version the module's go.mod asks for."""
    needed = _go_mod_version(module_dir) if module_dir else None
    hint = "install it from https://go.dev/dl/ and put its bin folder on PATH"
    go = shutil.which("go")
    if go is None:
        raise ToolchainError(f"go not found: Go >= {needed or '1.22'} is needed; {hint}")
    if needed:
        have = subprocess.run(
            [go, "env", "GOVERSION"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if _version_tuple(have.removeprefix("go")) < _version_tuple(needed):
            raise ToolchainError(f"{go} is {have}: Go >= {needed} is needed; {hint}")
    return go


# --- Python venvs --------------------------------------------------------------------------


def ensure_venv(
    service_dir: Path,
    venv_dir: Path,
    *,
    python: Path | None = None,
    group: str = "test",
    echo: TextIO | None = sys.stderr,
) -> VenvResult:
    """Create `venv_dir` with the runtime dependencies of `service_dir/pyproject.toml` and its
    `group` dependency group, unless the stamp says that declaration is already installed.
    A changed declaration recreates the venv, so removed dependencies go too."""
    base_python = python or Path(sys.executable)
    require_python(base_python)
    venv_python = venv_dir / "bin" / "python"
    stamp = _deps_hash(service_dir, base_python)
    if _read_stamp(venv_dir) == stamp and venv_python.exists():
        return VenvResult(venv_dir, venv_python, rebuilt=False, duration=0.0)
    start = time.monotonic()
    requirements = declared_requirements(service_dir / "pyproject.toml", group)
    uv = find_uv()
    if uv:
        _check(_run([uv, "venv", "--clear", "--python", str(base_python), str(venv_dir)], echo))
        if requirements:
            install = [uv, "pip", "install", "--python", str(venv_python), *requirements]
            _check(_run(install, echo))
    else:
        _check(_run([str(base_python), "-m", "venv", "--clear", str(venv_dir)], echo))
        if requirements:
            _check(_run([str(venv_python), "-m", "pip", "install", *requirements], echo))
    (venv_dir / STAMP_NAME).write_text(stamp + "\n")
    return VenvResult(venv_dir, venv_python, rebuilt=True, duration=time.monotonic() - start)


def venv_stale(target: VenvTarget, *, python: Path | None = None) -> str | None:
    """Why the venv needs `ensure_venv` (None when its stamp matches the declaration)."""
    if not (target.venv_dir / "bin" / "python").exists():
        return f"{target.venv_dir}: no venv"
    stamp = _deps_hash(target.service_dir, python or Path(sys.executable))
    if _read_stamp(target.venv_dir) != stamp:
        return f"{target.venv_dir}: {target.service_dir / 'pyproject.toml'} changed since install"
    return None


def stale(go: Iterable[GoTarget] = (), venvs: Iterable[VenvTarget] = ()) -> list[str]:
    """One reason per stale artefact, for `inv build --check`; builds nothing."""
    reasons = [go_stale(target) for target in go]
    reasons += [venv_stale(target) for target in venvs]
    return [reason for reason in reasons if reason]


def build_all(
    go: Sequence[GoTarget] = (),
    venvs: Sequence[VenvTarget] = (),
    *,
    repo: Path,
    echo: TextIO | None = sys.stderr,
) -> list[str]:
    """`inv build`: each Go target stamped from `repo`'s git state, then each venv; returns one
    line per artefact saying what was done and how long it took."""
    done = []
    stamp = stamp_vars(repo)
    for target in go:
        result = go_build(
            target.module_dir,
            target.package,
            target.output,
            ldflags_vars=stamp,
            gcflags=target.gcflags,
            echo=echo,
        )
        log = target.output.with_name(f"{target.output.name}.build.log")
        log.write_text(result.compiler_output)
        done.append(f"built {target.output} in {result.duration:.2f}s ({result.summary(log)})")
    for venv_target in venvs:
        made = ensure_venv(venv_target.service_dir, venv_target.venv_dir, echo=echo)
        state = f"rebuilt in {made.duration:.1f}s" if made.rebuilt else "up to date"
        done.append(f"venv {venv_target.venv_dir}: {state}")
    return done


def declared_requirements(pyproject: Path, group: str | None = "test") -> list[str]:
    """`[project].dependencies` plus the PEP 735 `group` (include-group entries expanded)."""
    data = tomllib.loads(pyproject.read_text())
    project = data.get("project", {})
    if "dependencies" in project.get("dynamic", []):
        raise BuildError(f"{pyproject}: dynamic dependencies are not supported", "")
    requirements: list[str] = list(project.get("dependencies", []))
    groups: dict[str, list[Any]] = data.get("dependency-groups", {})
    if group and group in groups:
        requirements += _expand_group(groups, group, seen=())
    return requirements


def require_python(python: Path) -> None:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    proc = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=False)
    have = proc.stdout.strip()
    needed = ".".join(map(str, MIN_PYTHON))
    if proc.returncode != 0 or _version_tuple(have) < MIN_PYTHON:
        raise ToolchainError(
            f"python {have or 'not runnable'} at {python}: Python >= {needed} is needed; "
            "install it with `uv python install 3.12` or your OS package manager"
        )


def find_uv() -> str | None:
    """`uv` on PATH, else the one installed beside the running interpreter (our venv's)."""
    beside = Path(sys.executable).parent / "uv"
    return shutil.which("uv") or (str(beside) if os.access(beside, os.X_OK) else None)


# --- helpers -------------------------------------------------------------------------------


def _run(
    cmd: Sequence[str], echo: TextIO | None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    if echo:
        print(f"$ {shlex.join(cmd)}", file=echo, flush=True)
    return subprocess.run(
        list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
    )


def _run_with_progress(
    cmd: Sequence[str], cwd: Path, echo: TextIO | None, label: str
) -> subprocess.CompletedProcess[str]:
    """`_run`, and while it runs longer than PROGRESS_EVERY, one line saying how far it got
    (a first build downloads modules and compiles the standard library for a minute)."""
    if echo:
        print(f"$ {shlex.join(cmd)}", file=echo, flush=True)
    start = time.monotonic()
    shown_at = start
    lines: list[str] = []
    with subprocess.Popen(
        list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            now = time.monotonic()
            if echo and now - shown_at >= PROGRESS_EVERY:
                shown_at = now
                got = BuildResult(Path(), 0, "".join(lines))
                print(f"  {label}: {len(got.downloaded)} modules downloaded, "
                      f"{len(got.rebuilt)} packages compiled ({now - start:.0f}s)",
                      file=echo, flush=True)  # fmt: skip
    return subprocess.CompletedProcess(list(cmd), proc.returncode, "".join(lines))


def _check(proc: subprocess.CompletedProcess[str]) -> None:
    if proc.returncode != 0:
        raise BuildError(f"{shlex.join(proc.args)} failed (exit {proc.returncode})", proc.stdout)


def _git_call(repo_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["git", "-C", str(repo_dir), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _git_answer(call: subprocess.Popen[str]) -> str:
    out, _ = call.communicate()
    return out.strip() if call.returncode == 0 else ""


def _go_mod_version(module_dir: Path) -> str | None:
    try:
        match = re.search(r"^go\s+(\S+)", (module_dir / "go.mod").read_text(), re.MULTILINE)
    except FileNotFoundError:
        return None
    return match.group(1) if match else None


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _deps_hash(service_dir: Path, python: Path) -> str:
    # The interpreter is part of the stamp: a venv built on another Python must be rebuilt.
    digest = hashlib.sha256(str(python.resolve()).encode())
    for name in ("pyproject.toml", "uv.lock"):
        path = service_dir / name
        if path.exists():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _read_stamp(venv_dir: Path) -> str | None:
    try:
        return (venv_dir / STAMP_NAME).read_text().strip()
    except FileNotFoundError:
        return None


def _expand_group(groups: Mapping[str, list[Any]], name: str, seen: tuple[str, ...]) -> list[str]:
    if name in seen:
        raise BuildError(f"dependency group cycle: {' -> '.join((*seen, name))}", "")
    result: list[str] = []
    for entry in groups.get(name, []):
        if isinstance(entry, dict) and "include-group" in entry:
            result += _expand_group(groups, str(entry["include-group"]), (*seen, name))
        else:
            result.append(str(entry))
    return result
