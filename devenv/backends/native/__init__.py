"""The native backend: the infrastructure roles as host processes under STATE_DIR, each
run by a detached supervisor of its own (`devenv.proc.detached`, the apps' supervisor), which
restarts it with backoff when it crashes: a kill -9 heals without an `inv up`.

`up` prepares each component (install, initdb, config), hands the process spec of its recipe
to a new supervisor in the component's folder and waits until that supervisor reports it
ready. Components start in parallel (none depends on another: compose.yaml says the same),
each reported as it becomes healthy; what one `up` started, a failure or Ctrl-C in that same
`up` stops again. One supervisor per component, so `up -c X` then `up -c Y` adds Y beside X,
and `down -c X` stops X alone. `up` and `down` hold the state folder's lock while they change
it.

Each supervisor's status file (`<service>/status.json`) names it and its server by kernel
identity. A server that runs without its supervisor — left by one killed with -9, or started
by an earlier version and recorded as `<service>/<service>.pid` — is still ours: `status`
shows it as an orphan, `down` stops it, `up` stops it and starts it under a supervisor.
"""

from __future__ import annotations

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
from devenv.backends.native.zipkin import Zipkin
from devenv.proc import detached, group, logs
from devenv.proc import status as recorded_status
from devenv.proc.record import Identity, Record
from devenv.settings import Settings

RECIPES: dict[str, type[Recipe]] = {
    "postgres": Postgres,
    "redpanda": Kafka,
    "emqx": Mosquitto,
    "traefik": Traefik,
    "zipkin": Zipkin,
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
        env = settings.as_env()
        active = {c.service for c in compose.components(env)}
        # Every component, the profiles' too: `down` stops a trace viewer started before
        # TRACING=off, and `status` shows it while it runs.
        self.every_recipe = {
            c.service: RECIPES[c.service](settings, c, self.root / c.service, tool_cache)
            for c in compose.components(env, every_profile=True)
        }
        self.recipes = {s: r for s, r in self.every_recipe.items() if s in active}

    # --- lifecycle ------------------------------------------------------------------
    def up(self, names: list[str]) -> None:
        targets = self._select(names)
        with state.lock(state.claim(self.settings.state_dir)).held():
            self._up(targets)

    def _up(self, targets: list[Recipe]) -> None:
        for recipe in targets:
            self._take_over(recipe)
        supervised = {r.program: detached.status(r.home) for r in targets}
        todo = [r for r in targets if supervised[r.program] is None]
        # Supervised but not ready: restarting after a crash. `up` waits for it.
        healing = [r for r in targets if (s := supervised[r.program]) and not _all_ready(s)]
        if not todo and not healing:
            self.say(f"already up: {', '.join(r.component.role for r in targets)} (native)")
            return
        needed = [p for r in todo for p in r.listen_ports()]
        needed += [p for r in healing for p in self._ports_not_held_by_it(r)]
        ports.check_free({p: self._setting_for(p) for p in needed})
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        started: list[Recipe] = []
        cancel = threading.Event()
        t0 = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=len(todo) + len(healing), thread_name_prefix="up")
        try:
            futures = [pool.submit(self._start, r, started, cancel) for r in todo]
            futures += [pool.submit(self._await_healed, r, cancel) for r in healing]
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
        targets = self._select(names, self.every_recipe)
        if not self.settings.state_dir.is_dir():
            self.say("nothing running (native)")
            return
        with state.lock(self.settings.state_dir).held():
            running = []
            for recipe in targets:
                if detached.status(recipe.home) or self._unsupervised(recipe):
                    running.append(recipe)
                else:
                    self._forget(recipe)
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
        for recipe in self.every_recipe.values():
            recipe.remove_data()

    def upstream_hosts(self) -> list[str]:
        return []  # the native Traefik runs on this host: it reaches the apps on loopback

    # --- inspection -----------------------------------------------------------------
    def status(self) -> list[ComponentStatus]:
        shown = [
            recipe
            for service, recipe in self.every_recipe.items()
            if service in self.recipes or detached.status(recipe.home) or self._unsupervised(recipe)
        ]
        return [self._status_of(recipe) for recipe in shown]

    def _status_of(self, recipe: Recipe) -> ComponentStatus:
        supervised = detached.status(recipe.home)
        child = supervised.apps[0] if supervised and supervised.apps else None
        pid = child.pid if child else None
        if supervised is not None:
            shown = "running" if pid else "restarting"
        elif loose := self._unsupervised(recipe):
            pid, shown = loose.pid, "orphan"
        elif self._forget(recipe):
            shown = "stale"  # reported once, then forgotten
        else:
            shown = "stopped"
        # Asked now, of the recorded process: a stalled server, or a foreign one on its port,
        # is not healthy whatever the supervisor saw when it started.
        healthy = recipe.spec().readiness(pid)() if pid else (False if supervised else None)
        return ComponentStatus(
            service=recipe.program,
            role=recipe.component.role,
            backend=self.name,
            state=shown,
            healthy=healthy,
            address=recipe.address,
            ident=f"pid {pid}" if pid else "-",
            uptime=time.time() - psutil.Process(pid).create_time() if pid else None,
            pid=pid,
            restarts=child.restarts if child else None,
            last_exit=str(child.last_exit) if child and child.last_exit else None,
        )

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
            spec = recipe.spec()
        except MissingToolError as exc:
            raise InfraError(f"{role} ({service}): {exc}") from None
        except RuntimeError as exc:
            raise ComponentFailed(f"{role} ({service}) could not be prepared: {exc}") from None
        if cancel.is_set():
            return
        s = self.settings
        try:
            # Its own verdict first: the supervisor gives up after UP_TIMEOUT without ready.
            limit = s.UP_TIMEOUT + s.STOP_TIMEOUT + 5
            detached.start([spec], recipe.home, stop_timeout=s.STOP_TIMEOUT, timeout=limit,
                           cancel=cancel)  # fmt: skip
        except poll.Cancelled:
            return  # detached.start stopped what it started
        except detached.DetachedError as exc:
            if exc.why is None:
                raise ComponentFailed(f"{role} ({service}): {exc}") from None
            raise ComponentFailed(self._failure(recipe, exc.why)) from None
        started.append(recipe)
        recipe.after_ready(self.say)
        self._say_healthy(recipe, t0)

    def _await_healed(self, recipe: Recipe, cancel: threading.Event) -> None:
        """Wait until the supervisor that restarts `recipe` after a crash has it ready."""
        t0 = time.monotonic()
        healed = poll.until(
            lambda: _all_ready(detached.status(recipe.home)),
            self.settings.UP_TIMEOUT,
            cancel=cancel,
            alive=lambda: detached.status(recipe.home) is not None,
        )
        if not healed:
            why = f"is restarting and not healthy after {self.settings.UP_TIMEOUT:.0f}s"
            raise ComponentFailed(self._failure(recipe, why))
        self._say_healthy(recipe, t0)

    def _say_healthy(self, recipe: Recipe, t0: float) -> None:
        took = time.monotonic() - t0
        role, service = recipe.component.role, recipe.program
        self.say(f"  ✓ {role:<8} {service:<10} healthy in {took:5.2f}s  {recipe.address}")

    def _failure(self, recipe: Recipe, why: str) -> str:
        tail = "\n".join(f"    {line}" for line in logs.last_lines(recipe.log_file, 20))
        return (
            f"{recipe.component.role} ({recipe.program}) {why}. Last log lines:\n{tail}\n"
            f"  full log: {recipe.log_file}"
        )

    def _stop(self, recipes: list[Recipe]) -> None:
        def stop_one(recipe: Recipe) -> None:
            t0 = time.monotonic()
            loose = self._unsupervised(recipe)
            if loose is not None:
                self._stop_unsupervised(recipe, loose)
            else:
                detached.stop(recipe.home, timeout=self.settings.STOP_TIMEOUT + 10)
            self._forget(recipe)
            self.say(f"  ✓ {recipe.component.role:<8} {recipe.program:<10} "
                     f"stopped in {time.monotonic() - t0:.2f}s")  # fmt: skip

        with ThreadPoolExecutor(max_workers=max(1, len(recipes))) as pool:
            list(pool.map(stop_one, recipes))

    def _take_over(self, recipe: Recipe) -> None:
        """Before `up`: a server of ours without a supervisor is stopped (cleanly: its data
        is kept) so that it starts again under one; a record of a process gone is dropped."""
        if detached.status(recipe.home) is not None:
            return
        loose = self._unsupervised(recipe)
        if loose is not None:
            self.say(f"  {recipe.program}: pid {loose.pid} runs without a supervisor (started "
                     "by an earlier version, or its supervisor was killed): stopping it to "
                     "start it under one")  # fmt: skip
            self._stop_unsupervised(recipe, loose)
        if self._forget(recipe):
            self.say(f"  {recipe.program}: stale record (its processes are gone), removed")

    def _unsupervised(self, recipe: Recipe) -> Identity | None:
        """Our server of `recipe` that no live supervisor watches, if one runs: the one a
        supervisor killed with -9 left behind, or one an earlier version started."""
        recorded = recorded_status.read(recipe.home) or {}
        if detached.status(recipe.home) is None:
            for app in recorded.get("apps", {}).values():
                identity = Identity.from_json(app.get("identity"))
                if identity is not None and identity.alive():
                    return identity
        return self._legacy(recipe).running()

    def _stop_unsupervised(self, recipe: Recipe, server: Identity) -> None:
        group.stop_group(
            server.pid,
            self.settings.STOP_TIMEOUT,
            first_signal=recipe.stop_signal,
            leader_only=recipe.signal_leader_only,
        )
        self._forget(recipe)

    def _forget(self, recipe: Recipe) -> bool:
        """Remove the records of `recipe` that no live supervisor owns; True if there were."""
        if detached.status(recipe.home) is not None:
            return False
        legacy = self._legacy(recipe)
        had = (recipe.home / recorded_status.STATUS_FILE).exists() or legacy.path.exists()
        recorded_status.remove(recipe.home)
        legacy.remove()
        return had

    def _legacy(self, recipe: Recipe) -> Record:
        """The record of a server started by a version before its supervisor."""
        return Record(recipe.home / f"{recipe.component.service}.pid")

    def _ports_not_held_by_it(self, recipe: Recipe) -> list[int]:
        """The ports of a restarting `recipe` that its own server does not hold (yet): a
        foreign process holding one of them is named, as when `up` starts it."""
        holders = {port: ports.holder_pid(port) for port in recipe.listen_ports()}
        running = detached.status(recipe.home)  # after: names a server it started meanwhile
        pid = running.apps[0].pid if running and running.apps else None
        ours = {p.pid for p in group.group_members(pid)} if pid else set()
        return [port for port, holder in holders.items() if holder not in ours]

    def _select(self, names: list[str], among: dict[str, Recipe] | None = None) -> list[Recipe]:
        recipes = self.recipes if among is None else among
        if not names:
            return list(recipes.values())
        components = [r.component for r in recipes.values()]
        programs = {r.program: r for r in recipes.values()}  # what `inv status` shows
        try:
            return [programs.get(n) or recipes[compose.find(components, n).service] for n in names]
        except KeyError as exc:
            raise InfraError(str(exc.args[0])) from None

    def _setting_for(self, port: int) -> str:
        return self.settings.port_owner().get(port, "the matching *_PORT setting")


def _all_ready(running: detached.DetachedStatus | None) -> bool:
    return bool(running and running.apps and all(app.ready for app in running.apps))
