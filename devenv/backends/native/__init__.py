"""The native backend: the four infrastructure roles as host processes under STATE_DIR.

Components start in parallel (nothing among them depends on another), each reported as it
becomes healthy. What one `up` started, a failure or Ctrl-C in that same `up` stops again.
Each running component has a record (`devenv.proc.record`) naming its process by the kernel's
identity; `up` and `down` hold the state folder's lock while they change it.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

import psutil

from devenv import compose, poll, ports, state
from devenv.backends.base import ComponentStatus, InfraError, Say
from devenv.backends.native.kafka import Kafka
from devenv.backends.native.mosquitto import Mosquitto
from devenv.backends.native.postgres import Postgres
from devenv.backends.native.recipe import MissingToolError, Recipe
from devenv.backends.native.traefik import Traefik
from devenv.proc import group, logs
from devenv.proc.record import Identity, Record, StateWriteError
from devenv.settings import Settings

RECIPES: dict[str, type[Recipe]] = {
    "postgres": Postgres,
    "redpanda": Kafka,
    "emqx": Mosquitto,
    "traefik": Traefik,
}
TOOL_CACHE = Path.home() / ".cache" / "platform-devenv"


class ComponentFailed(InfraError):
    pass


class NativeBackend:
    name = "native"

    def __init__(self, settings: Settings, say: Say = print, tool_cache: Path = TOOL_CACHE):
        self.settings = settings
        lock = threading.Lock()

        def say_one_line_at_a_time(line: str) -> None:
            with lock:
                say(line)

        self.say = say_one_line_at_a_time
        self.root = settings.state_dir / "native"
        components = compose.components(settings.as_env())
        self.recipes = {
            c.service: RECIPES[c.service](settings, c, self.root / c.service, tool_cache)
            for c in components
        }

    # --- lifecycle ------------------------------------------------------------------
    def up(self, names: list[str]) -> None:
        targets = self._select(names)
        with state.lock(state.claim(self.settings.state_dir)).held():
            self._up(targets)

    def _up(self, targets: list[Recipe]) -> None:
        self._forget_stale(targets)
        todo = [r for r in targets if self._record(r).running() is None]
        if not todo:
            self.say(f"already up: {', '.join(r.component.role for r in targets)} (native)")
            return
        ports.check_free({p: self._setting_for(p) for r in todo for p in r.listen_ports()})
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        started: list[Recipe] = []
        cancel = threading.Event()
        t0 = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=len(todo), thread_name_prefix="up")
        try:
            futures = [pool.submit(self._start, r, started, cancel) for r in todo]
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            failure = next((f.exception() for f in done if f.exception()), None)
            if failure is not None:
                cancel.set()
                wait(futures)
                self._stop(started)
                raise failure
        except KeyboardInterrupt:
            cancel.set()
            self.say("interrupted: stopping what this `inv up` started")
            pool.shutdown(wait=True, cancel_futures=True)
            self._stop(started)
            raise
        finally:
            pool.shutdown(wait=True)
        self.say(f"all healthy in {time.monotonic() - t0:.1f}s (native)")

    def down(self, names: list[str]) -> None:
        targets = self._select(names)
        if not self.settings.state_dir.is_dir():
            self.say("nothing running (native)")
            return
        with state.lock(self.settings.state_dir).held():
            self._forget_stale(targets)
            running = [r for r in targets if self._record(r).running() is not None]
            if not running:
                self.say("nothing running (native)")
                return
            self._stop(running)

    def clean(self) -> None:
        self.down([])
        where = self.settings.state_dir
        if not where.exists():
            return
        if not state.is_ours(where):
            state.remove(where)  # refuses, naming the folder
        self.remove_data()
        state.remove(where)
        self.say(f"deleted {where} (data, logs, state); the tool cache {TOOL_CACHE} is kept")

    def remove_data(self) -> None:
        """Delete the components' data (and data kept outside the state folder), not logs."""
        for recipe in self.recipes.values():
            recipe.remove_data()

    def upstream_hosts(self) -> list[str]:
        return []  # the native Traefik runs on this host: it reaches the apps on loopback

    # --- inspection -----------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        result = []
        for recipe in self.recipes.values():
            record = self._record(recipe)
            running = record.running()
            pid = running.pid if running else None
            shown = "running" if pid else ("stale" if record.is_stale() else "stopped")
            uptime = time.time() - psutil.Process(pid).create_time() if pid else None
            result.append(
                ComponentStatus(
                    service=recipe.program,
                    role=recipe.component.role,
                    backend=self.name,
                    state=shown,
                    healthy=recipe.probe()() if pid else None,
                    address=recipe.address,
                    ident=f"pid {pid}" if pid else "-",
                    uptime=uptime,
                    pid=pid,
                )
            )
            if shown == "stale":
                record.remove()
        return result

    def logs(self, name: str | None, follow: bool, lines: int) -> None:
        targets = self._select([name] if name else [])
        files = {r.program: r.log_file for r in targets}
        logs.tail(files, lines, follow, sys.stdout)

    # --- internals ------------------------------------------------------------------
    def _start(self, recipe: Recipe, started: list[Recipe], cancel: threading.Event) -> None:
        t0 = time.monotonic()
        role, service = recipe.component.role, recipe.program
        try:
            recipe.prepare(self.say)
            launch = recipe.launch()
        except MissingToolError as exc:
            raise InfraError(f"{role} ({service}): {exc}") from None
        except RuntimeError as exc:
            raise ComponentFailed(f"{role} ({service}) could not be prepared: {exc}") from None
        if cancel.is_set():
            return
        proc = group.spawn(
            launch.argv, log_file=recipe.log_file, env=_child_env(launch.env), user=launch.user
        )
        identity = Identity.of(proc.pid)  # None: it exited already, the wait below says so
        if identity is not None:
            try:
                self._record(recipe).write(identity, program=service)
            except StateWriteError:
                # Untracked, nobody could stop it later: stop it now.
                group.stop_group(proc.pid, self.settings.STOP_TIMEOUT)
                raise
        started.append(recipe)
        healthy = poll.until(
            recipe.probe(),
            self.settings.UP_TIMEOUT,
            cancel=cancel,
            alive=lambda: proc.poll() is None,
        )
        if not healthy:
            code = proc.poll()
            why = (
                f"exited with code {code}"
                if code is not None
                else (f"not healthy after {self.settings.UP_TIMEOUT:.0f}s")
            )
            tail = "\n".join(f"    {line}" for line in logs.last_lines(recipe.log_file, 20))
            raise ComponentFailed(
                f"{role} ({service}) {why}. Last log lines:\n{tail}\n  full log: {recipe.log_file}"
            )
        recipe.after_ready(self.say)
        took = time.monotonic() - t0
        self.say(f"  ✓ {role:<8} {service:<10} healthy in {took:5.2f}s  {recipe.address}")

    def _stop(self, recipes: list[Recipe]) -> None:
        def stop_one(recipe: Recipe) -> None:
            record = self._record(recipe)
            running = record.running()
            t0 = time.monotonic()
            if running is not None:
                killed = group.stop_group(
                    running.pid,
                    self.settings.STOP_TIMEOUT,
                    first_signal=recipe.stop_signal,
                    leader_only=recipe.signal_leader_only,
                )
                how = "killed after timeout" if killed else "stopped"
                self.say(f"  ✓ {recipe.component.role:<8} {recipe.program:<10} "
                         f"{how} in {time.monotonic() - t0:.2f}s")  # fmt: skip
            record.remove()

        with ThreadPoolExecutor(max_workers=max(1, len(recipes))) as pool:
            list(pool.map(stop_one, recipes))

    def _select(self, names: list[str]) -> list[Recipe]:
        if not names:
            return list(self.recipes.values())
        components = [r.component for r in self.recipes.values()]
        programs = {r.program: r for r in self.recipes.values()}  # what `inv status` shows
        try:
            return [
                programs.get(n) or self.recipes[compose.find(components, n).service] for n in names
            ]
        except KeyError as exc:
            raise InfraError(str(exc.args[0])) from None

    def _record(self, recipe: Recipe) -> Record:
        return Record(recipe.home / f"{recipe.component.service}.pid")

    def _forget_stale(self, recipes: list[Recipe]) -> None:
        for recipe in recipes:
            record = self._record(recipe)
            if record.is_stale():
                gone = record.identity()
                self.say(
                    f"  {recipe.program}: stale record "
                    f"(process {gone.pid if gone else '?'} is gone), removed"
                )
                record.remove()

    def _setting_for(self, port: int) -> str:
        return self.settings.port_owner().get(port, "the matching *_PORT setting")


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **extra}
