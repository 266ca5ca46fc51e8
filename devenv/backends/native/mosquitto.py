"""Mosquitto from the OS package, with a generated config bound to 127.0.0.1. `config` is the
one Mosquitto config: a docker stand-in broker renders it too."""

from __future__ import annotations

from devenv import compose
from devenv.backends.native.needs import MOSQUITTO
from devenv.backends.native.recipe import Launch, Recipe, Say, current_user, require
from devenv.proc import readiness

# Seconds between two saves of the broker's whole state (1 is Mosquitto's shortest period):
# what it acknowledged since the last save is lost to a kill -9 (README, "Faults").
AUTOSAVE_SECONDS = 1


def session_limits() -> tuple[int, int]:
    """(queued, in flight) per session: compose.yaml's EMQX settings, the one source for
    every broker (sized in docs/mqtt-sizing.md)."""
    env = compose.load_raw()["services"]["emqx"]["environment"]
    return int(env["EMQX_MQTT__MAX_MQUEUE_LEN"]), int(env["EMQX_MQTT__MAX_INFLIGHT"])


def config(listener: str, data_dir: str, user: str) -> str:
    """mosquitto.conf: `listener` is "PORT ADDRESS", `data_dir` the persistence folder (with
    a trailing slash), `user` the one Mosquitto drops to when started as root."""
    queued, inflight = session_limits()
    return "\n".join(
        [
            f"listener {listener}",
            "allow_anonymous true",
            # Sessions with their plain subscriptions and queued messages survive a restart:
            # saved on a clean stop and every AUTOSAVE_SECONDS. autosave_on_changes would
            # write and fsync the whole state after every loop that changed it: ~100 messages/s
            # from one connection, and messages handed to a stalled subscriber stay unsaved
            # until the next change (docs/benchmarks.md, "MQTT broker restarts").
            "persistence true",
            f"persistence_location {data_dir}",
            f"autosave_interval {AUTOSAVE_SECONDS}",
            # Defaults are 1,000 queued and 20 in flight: a paused app lost the rest.
            f"max_queued_messages {queued}",
            "max_queued_bytes 0",
            f"max_inflight_messages {inflight}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            # "Outgoing messages are being dropped for client", connections. Not "information":
            # it logs every save.
            "log_type notice",
            "connection_messages true",
            f"user {user}",
            "",
        ]
    )


class Mosquitto(Recipe):
    program = "mosquitto"
    needs = (MOSQUITTO,)

    def listen_ports(self) -> list[int]:
        return [self.settings.MQTT_PORT]

    def prepare(self, say: Say) -> None:
        self.binary = require(MOSQUITTO)
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "mosquitto.conf").write_text(
            config(
                listener=f"{self.settings.MQTT_PORT} 127.0.0.1",
                data_dir=f"{self.home / 'data'}/",
                # Stay the user we started as: dropping to `mosquitto` would lose access to
                # the persistence folder.
                user=current_user(),
            )
        )

    def launch(self) -> Launch:
        return Launch(
            argv=[
                require(MOSQUITTO),
                "-c",
                str(self.home / "mosquitto.conf"),
            ],
            env={},
        )

    def ready_checks(self) -> tuple[readiness.Check, ...]:
        return (readiness.Mqtt(self.settings.MQTT_PORT),)
