"""What the reload benchmarks share (scripts/bench_reload.py, its --monolith target in
scripts/bench_reload_monolith.py): a tool under test, run under our supervisor and reloader,
and the time from an edit to the first answer carrying it."""

from __future__ import annotations

import io
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from devenv import poll
from devenv.proc import reload
from devenv.proc.supervisor import ProcessSpec, Supervisor
from tests.support.running import get
from tests.support.wait import eventually

EDIT_SERVED_WITHIN = 60.0  # seconds; a slower reload is a failure, not a figure


@dataclass
class Runner:
    port: int
    edit: Callable[[str], object]
    history: list[reload.ReloadEvent] | None = None  # ours record each reload; air does not
    served: Callable[[str], bool] | None = None  # default: / answers the edited text


@contextmanager
def supervised(spec: ProcessSpec, target: reload.Target) -> Iterator[reload.Reloader]:
    """`spec` under our supervisor, ready, with a reloader watching `target`; stopped after."""
    supervisor = Supervisor([spec], out=io.StringIO(), echo=False)
    reloader = reload.Reloader(supervisor, [target], out=io.StringIO())
    ready = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(ready.set,), daemon=True)
    thread.start()
    try:
        if not ready.wait(30):
            raise RuntimeError(f"{spec.name} did not get ready; see {spec.log_file}")
        reloader.start()
        yield reloader
    finally:
        reloader.close()
        supervisor.request_stop()
        thread.join(30)


def measure(runner: Runner, expected: str) -> float:
    """Seconds from `runner.edit(expected)` to the first answer that serves it."""
    reloads = len(runner.history) if runner.history is not None else 0
    served = runner.served or (lambda text: get(f"http://127.0.0.1:{runner.port}/") == text)
    start = time.perf_counter()
    runner.edit(expected)
    if not poll.until(lambda: served(expected), EDIT_SERVED_WITHIN, interval=0.01):
        raise RuntimeError(f"no answer {expected!r} after {EDIT_SERVED_WITHIN:.0f} s")
    took = time.perf_counter() - start
    if runner.history is not None:
        history = runner.history
        eventually(lambda: len(history) > reloads, 10, "the reload recorded", interval=0.02)
    time.sleep(0.3)  # let the watcher and the new process settle before the next edit
    return took


def pct(samples: list[float], percentile: int) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[percentile - 1]
