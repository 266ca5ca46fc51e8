"""Mosquitto from the OS package, with a generated config bound to 127.0.0.1. `config` also
renders the docker backend's stand-in broker (devenv/backends/stand_ins.py): one broker config."""

from __future__ import annotations

from devenv import compose
from devenv.backends.native.recipe import Launch, Recipe, Say, current_user, require
from devenv.proc import probe as probes


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
            "persistence true",
            f"persistence_location {data_dir}",
            "autosave_interval 10",
            # Defaults are 1,000 queued and 20 in flight: a paused app lost the rest.
            f"max_queued_messages {queued}",
            "max_queued_bytes 0",
            f"max_inflight_messages {inflight}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",  # "Outgoing messages are being dropped for client"
            "log_type information",
            "connection_messages true",
            f"user {user}",
            "",
        ]
    )


class Mosquitto(Recipe):
    program = "mosquitto"

    def listen_ports(self) -> list[int]:
        return [self.settings.MQTT_PORT]

    def prepare(self, say: Say) -> None:
        self.binary = require("mosquitto", "mosquitto", "/usr/sbin")
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
                require("mosquitto", "mosquitto", "/usr/sbin"),
                "-c",
                str(self.home / "mosquitto.conf"),
            ],
            env={},
        )

    def probe(self) -> probes.Probe:
        return probes.mqtt_broker("127.0.0.1", self.settings.MQTT_PORT)
