"""Apache Kafka in KRaft mode (one node, broker + controller): speaks Redpanda's protocol.

Its jars come once from Maven Central into the tool cache (Maven resolves them), the
storage is formatted once, and the JVM runs with a small heap.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from devenv.backends.native.needs import JAVA, MAVEN
from devenv.backends.native.recipe import Launch, Recipe, Say, require
from devenv.proc import readiness

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.devenv</groupId><artifactId>kafka-native</artifactId><version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId>
      <version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = warn
logger.state.name = state.change.logger
logger.state.level = warn
logger.controller.name = org.apache.kafka.controller
logger.controller.level = warn
"""


class Kafka(Recipe):
    program = "kafka"
    needs = (JAVA, MAVEN)

    def listen_ports(self) -> list[int]:
        return [self.settings.KAFKA_PORT, self.settings.KAFKA_CONTROLLER_PORT]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.settings.KAFKA_PORT}"

    @property
    def libs(self) -> Path:
        return libs_dir(self.cache)

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    def prepare(self, say: Say) -> None:
        self.java = require(JAVA)
        self.home.mkdir(parents=True, exist_ok=True)
        ensure_jars(self.cache, say)
        s = self.settings
        (self.home / "server.properties").write_text(
            server_properties(
                listen=f"127.0.0.1:{s.KAFKA_PORT}",
                advertise=f"127.0.0.1:{s.KAFKA_PORT}",
                controller=f"127.0.0.1:{s.KAFKA_CONTROLLER_PORT}",
                log_dirs=str(self.data_dir),
            )
        )
        (self.home / "log4j2.properties").write_text(LOG4J2)
        if not (self.data_dir / "meta.properties").exists():
            say("kafka: format KRaft storage (once)")
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
            # `=` form: a base64 id may start with "-", which argparse would read as a flag.
            self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                       f"--config={self.home / 'server.properties'}")  # fmt: skip

    def launch(self) -> Launch:
        return Launch(
            argv=[
                require(JAVA),
                "-Xms256m", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Xshare:auto", "-Djava.awt.headless=true",
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
                "-cp", f"{self.libs}/*",
                "kafka.Kafka", str(self.home / "server.properties"),
            ],
            env={},
        )  # fmt: skip

    def ready_checks(self) -> tuple[readiness.Check, ...]:
        return (readiness.Kafka(self.settings.KAFKA_PORT),)

    def _java(self, main: str, *args: str) -> None:
        result = subprocess.run(
            [self.java, "-Xmx256m", f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
             "-cp", f"{self.libs}/*", main, *args],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(
                f"{main} {args[0]} failed: {(result.stdout + result.stderr).strip()}"
            )


def server_properties(listen: str, advertise: str, controller: str, log_dirs: str) -> str:
    """One node, broker and controller, for both backends: clients on `listen` (host:port),
    told to come back on `advertise`; the controller quorum on `controller`."""
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{controller}",
            f"listeners=PLAINTEXT://{listen},CONTROLLER://{controller}",
            f"advertised.listeners=PLAINTEXT://{advertise}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            f"log.dirs={log_dirs}",
            "num.partitions=3",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "share.coordinator.state.topic.replication.factor=1",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )


def libs_dir(cache: Path) -> Path:
    return cache / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_jars(cache: Path, say: Say) -> Path:
    """The Kafka jars in the tool cache, resolved by Maven the first time; their folder."""
    libs = libs_dir(cache)
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    mvn = require(MAVEN)
    say(f"kafka: resolving Apache Kafka {KAFKA_VERSION} jars from Maven Central (once)")
    with tempfile.TemporaryDirectory() as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(_POM.format(kafka=KAFKA_VERSION, log4j=LOG4J_VERSION))
        staged = Path(tmp) / "libs"
        result = subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={staged}", "-DincludeScope=runtime"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
            raise RuntimeError(f"mvn could not resolve the Kafka jars:\n{tail}")
        libs.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(libs, ignore_errors=True)
        shutil.move(str(staged), libs)
    return libs
