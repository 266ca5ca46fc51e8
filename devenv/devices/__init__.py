"""Simulated devices that answer commands: `inv devices.simulate`, `inv run --simulate`."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TextIO

from devenv.devices.plan import Plan, SimulationError
from devenv.devices.report import Output
from devenv.devices.simulation import Simulation
from devenv.settings import Settings

__all__ = ["BesideApps", "Plan", "SimulationError", "beside_apps", "simulate"]

# `inv run --simulate`: the apps are ready; the gateway may still be picking up their routes.
GATEWAY_GRACE = 10.0


def simulate(settings: Settings, plan: Plan, out: TextIO) -> bool:
    """`inv devices.simulate`: True when Ctrl-C stopped it."""
    return Simulation(settings, plan, Output.to(out)).run()


class BesideApps:
    """`inv run --simulate`'s devices: started once the apps are ready, stopped (summary
    printed) when the run ends."""

    def __init__(self, settings: Settings, enabled: bool) -> None:
        self.settings = settings
        self.enabled = enabled
        self.simulation: Simulation | None = None

    def after(
        self, first: Callable[[], None], say: Callable[[str, str], None]
    ) -> Callable[[], None]:
        """What the supervisor calls once the apps are ready: `first`, then the devices, with
        their defaults until the run ends, speaking through `say("devices", line)`."""

        def ready() -> None:
            first()
            if self.enabled:
                output = Output(lambda text: say("devices", text), every=10.0)
                self.simulation = Simulation(self.settings, Plan(seconds=0), output)
                self.simulation.start(wait=GATEWAY_GRACE)

        return ready

    def stop(self) -> None:
        if self.simulation is not None and self.simulation.running:
            # The supervisor has stopped the apps by now: no APIs to ask any more.
            self.simulation.stop(drain=False, why="the apps stopped", recount=False)


@contextlib.contextmanager
def beside_apps(settings: Settings, enabled: bool) -> Iterator[BesideApps]:
    beside = BesideApps(settings, enabled)
    try:
        yield beside
    finally:
        beside.stop()
