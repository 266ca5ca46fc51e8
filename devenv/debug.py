"""`inv run --debug [app|ai]`: the apps under a debugger an editor attaches to, on 127.0.0.1.

The monolith runs under Delve headless (`dlv exec`, `--accept-multiclient --continue`: it
serves without a client, and clients come and go), built without optimisations or inlining
so every variable and line can be inspected; the AI service under debugpy (`--listen`,
not waiting for a client). Their ports are settings (DELVE_PORT, DEBUGPY_PORT). Readiness is
probed as without a debugger: the monolith answers with its own pid, Delve's child, and the
supervisor accepts a descendant. docs/debugging.md has the editors' settings.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import replace

from devenv import apps, build, gotools, ports
from devenv.build import ToolchainError
from devenv.errors import UserError
from devenv.proc.reload import GoReload
from devenv.proc.supervisor import ProcessSpec
from devenv.settings import REPO_ROOT, Settings

DELVE = "github.com/go-delve/delve/cmd/dlv@v1.27.2"
# No optimisations, no inlining: what a debugger needs to show variables and step by line.
GCFLAGS = "all=-N -l"
GO_TARGET = build.GoTarget(
    apps.GO_MODULE, apps.GO_PACKAGE, REPO_ROOT / "bin" / "platform-debug", gcflags=GCFLAGS
)
# In `dlv exec BINARY ...`, where the binary is: a reload swaps that argument.
BINARY_ARG = 2
CHOICES = ("app", "ai")
PORT_KEYS = {"app": "DELVE_PORT", "ai": "DEBUGPY_PORT"}


class DebugChoiceError(UserError):
    pass


def chosen(value: str | bool) -> tuple[str, ...]:
    """`--debug` alone: both apps; `--debug app` or `--debug ai`: that one; absent: none."""
    if value is False or value == "":
        return ()
    if value is True:
        return CHOICES
    if value not in CHOICES:
        raise DebugChoiceError(
            f"--debug {value}: debug `app` (the monolith, Delve), `ai` (the AI service, "
            "debugpy), or give no name for both"
        )
    return (str(value),)


def check_ports(settings: Settings, debugged: Sequence[str]) -> None:
    """A busy debug port is one line naming its holder and the setting that moves it."""
    ports.check_free({getattr(settings, PORT_KEYS[name]): PORT_KEYS[name] for name in debugged})


def go_target(debugged: Sequence[str]) -> build.GoTarget:
    """The monolith's build: the debugger's when it is debugged."""
    return GO_TARGET if "app" in debugged else apps.GO_TARGET


def specs(settings: Settings, debugged: Sequence[str]) -> list[ProcessSpec]:
    """The apps' specs, those in `debugged` run under their debugger."""
    wrapped = []
    for spec in apps.specs(settings):
        if spec.name == "app" and "app" in debugged:
            debug_build = replace(spec, argv=(str(GO_TARGET.output), *spec.argv[1:]))
            wrapped.append(under_delve(debug_build, settings))
        elif spec.name == "ai" and "ai" in debugged:
            wrapped.append(under_debugpy(spec, settings))
        else:
            wrapped.append(spec)
    return wrapped


def under_delve(spec: ProcessSpec, settings: Settings) -> ProcessSpec:
    """`spec`'s binary (built with GCFLAGS) run by `dlv exec`, its arguments after `--`."""
    binary, *args = spec.argv
    argv = (delve(), "exec", binary, *delve_options(settings), "--", *args)
    return replace(spec, argv=argv)


def go_reload(target: GoReload) -> GoReload:
    """`target` for a binary under Delve: built as a debugger needs, started under it again."""
    return replace(target, strip=False, gcflags=GCFLAGS, binary_arg=BINARY_ARG)


def delve_options(settings: Settings) -> list[str]:
    return [
        "--headless",
        f"--listen=127.0.0.1:{settings.DELVE_PORT}",
        "--api-version=2",
        "--accept-multiclient",
        "--continue",
    ]


def under_debugpy(spec: ProcessSpec, settings: Settings) -> ProcessSpec:
    """`python -m debugpy --listen ... -m module`: the service serves without a client."""
    python, *rest = spec.argv
    ensure_debugpy()
    listen = f"127.0.0.1:{settings.DEBUGPY_PORT}"
    return replace(spec, argv=(python, "-m", "debugpy", "--listen", listen, *rest))


def delve() -> str:
    """Delve from the tool cache (installed from the Go module proxy on first use)."""
    try:
        return gotools.installed(DELVE)
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        raise ToolchainError(f"Delve could not be installed ({exc}): run ./scripts/bootstrap, "
                             f"then `go install {DELVE}`") from None  # fmt: skip


def ensure_debugpy() -> None:
    """The AI service's `debug` dependency group (debugpy) in its venv, installed on demand:
    the venv `inv build` makes stays without it."""
    python = apps.AI_VENV / "bin" / "python"
    has = subprocess.run([str(python), "-c", "import debugpy"], capture_output=True, check=False)
    if has.returncode == 0:
        return
    pyproject = apps.AI_SERVICE / "pyproject.toml"
    runtime = build.declared_requirements(pyproject, None)
    wanted = [req for req in build.declared_requirements(pyproject, "debug") if req not in runtime]
    uv = build.find_uv()
    install = [uv, "pip", "install", "--python", str(python)] if uv else [
        str(python), "-m", "pip", "install"]  # fmt: skip
    print(f"$ {' '.join([*install, *wanted])}", flush=True)
    done = subprocess.run([*install, *wanted], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines() or [f"exit {done.returncode}"]
        raise ToolchainError(f"debugpy could not be installed into {apps.AI_VENV}: {why[-1]}")


def attach_lines(settings: Settings, debugged: Sequence[str]) -> list[str]:
    """What an editor needs to attach (docs/debugging.md has launch.json and GoLand's)."""
    lines = []
    if "app" in debugged:
        lines.append(
            f"app: Delve on 127.0.0.1:{settings.DELVE_PORT} (JSON-RPC and DAP) — VS Code: "
            '"Attach to the monolith"; GoLand: Go Remote, 127.0.0.1, port '
            f"{settings.DELVE_PORT}; terminal: dlv connect 127.0.0.1:{settings.DELVE_PORT}"
        )
    if "ai" in debugged:
        lines.append(
            f"ai: debugpy on 127.0.0.1:{settings.DEBUGPY_PORT} (DAP) — VS Code: "
            '"Attach to the AI service"'
        )
    return lines
