"""Pre-forking launcher of a Python service under live reload: `python zygote.py
[--preload-from pyproject.toml] [--preload MODULE] -m service.module [args]`.

Importing a FastAPI service's dependencies (fastapi, pydantic, uvicorn, numpy) takes
seconds, its own modules milliseconds. This launcher imports the dependencies once, then
forks a child that runs `-m service.module`; SIGHUP replaces that child with a fresh fork, so
a reload pays for the service's own imports only. If the child exits by itself, the launcher
exits with its code, so the supervisor sees the crash. SIGTERM/SIGINT stop both.

Standard library only: it runs on the service venv's interpreter, where devenv is absent.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import runpy
import signal
import sys
import time
import tomllib
import traceback
from importlib import metadata
from pathlib import Path

_USAGE = "zygote.py [--preload-from PYPROJECT] [--preload MODULE]... -m MODULE [ARGS]"
_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)


def main() -> int:
    parser = argparse.ArgumentParser(prog="zygote", usage=_USAGE)
    parser.add_argument("--preload-from", type=Path, help="import its [project].dependencies")
    parser.add_argument("--preload", action="append", default=[], metavar="MODULE")
    argv = sys.argv[1:]
    if "-m" not in argv or argv.index("-m") == len(argv) - 1:
        parser.error("-m MODULE is required")
    split = argv.index("-m")
    args = parser.parse_args(argv[:split])
    module, *module_args = argv[split + 1 :]
    # A reload asked for while preloading needs nothing: the first fork imports fresh code.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    # As `python -m` does: the working directory first, not this file's folder.
    sys.path[0] = os.getcwd()
    started = time.monotonic()
    loaded = preload([*args.preload, *declared_modules(args.preload_from)])
    took = time.monotonic() - started
    print(f"zygote: preloaded {', '.join(loaded) or 'nothing'} in {took:.2f}s", flush=True)
    return supervise(module, module_args)


def declared_modules(pyproject: Path | None) -> list[str]:
    """Top-level modules of the distributions `pyproject` declares as runtime dependencies."""
    if pyproject is None:
        return []
    requirements = tomllib.loads(pyproject.read_text()).get("project", {}).get("dependencies", [])
    declared = {_canonical(req) for req in requirements}
    return sorted(
        module
        for module, dists in metadata.packages_distributions().items()
        if module.isidentifier()
        and not module.startswith("_")
        and any(_canonical(dist) in declared for dist in dists)
    )


def preload(modules: list[str]) -> list[str]:
    loaded = []
    for module in modules:
        try:
            importlib.import_module(module)
            loaded.append(module)
        except Exception as exc:  # the service itself will say it properly, if it matters
            print(f"zygote: could not preload {module}: {exc}", flush=True)
    return loaded


def supervise(module: str, args: list[str]) -> int:
    # Handlers only wake the loop through the pipe; all the work happens in the loop, so a
    # signal can never interrupt a half-done stop or fork.
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    for sig in _SIGNALS:
        signal.signal(sig, lambda *_: None)
    child = fork(module, args, (wake_read, wake_write))
    while True:
        for signum in os.read(wake_read, 64):
            if signum == signal.SIGCHLD:
                pid, status = os.waitpid(child, os.WNOHANG)
                if pid:
                    return os.waitstatus_to_exitcode(status)
            elif signum == signal.SIGHUP:
                stop(child)
                child = fork(module, args, (wake_read, wake_write))
            elif signum in (signal.SIGTERM, signal.SIGINT):
                stop(child)
                return 0


def fork(module: str, args: list[str], wake: tuple[int, int]) -> int:
    pid = os.fork()
    if pid:
        return pid
    signal.set_wakeup_fd(-1)
    for fd in wake:
        os.close(fd)
    for sig in _SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    sys.argv = [module, *args]
    code = 0
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def stop(child: int, timeout: float = 5.0) -> None:
    """SIGTERM the child, SIGKILL it after `timeout`; reap it either way."""
    deadline = time.monotonic() + timeout
    try:
        os.kill(child, signal.SIGTERM)
        while os.waitpid(child, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
                return
            time.sleep(0.01)  # polling the child's exit, bounded by `deadline`
    except (ChildProcessError, ProcessLookupError):
        return


def _canonical(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    return re.sub(r"[-_.]+", "-", match.group(0)).lower() if match else ""


if __name__ == "__main__":
    sys.exit(main())
