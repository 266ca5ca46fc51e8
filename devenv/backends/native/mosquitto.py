"""Mosquitto from the OS package, with a generated config bound to 127.0.0.1."""

from __future__ import annotations

from devenv.backends.native.recipe import Launch, Recipe, Say, current_user, require
from devenv.proc import probe as probes


class Mosquitto(Recipe):
    program = "mosquitto"

    def listen_ports(self) -> list[int]:
        return [self.settings.MQTT_PORT]

    def prepare(self, say: Say) -> None:
        self.binary = require("mosquitto", "mosquitto", "/usr/sbin")
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        (self.home / "mosquitto.conf").write_text(
            "\n".join(
                [
                    f"listener {self.settings.MQTT_PORT} 127.0.0.1",
                    "allow_anonymous true",
                    "persistence true",
                    f"persistence_location {self.home / 'data'}/",
                    "autosave_interval 10",
                    "log_dest stdout",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    # Stay the user we started as: dropping to `mosquitto` would lose access
                    # to the persistence folder.
                    f"user {current_user()}",
                    "",
                ]
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
