"""The MQTT broker as a device or a developer on this machine reaches it: 127.0.0.1:MQTT_PORT
on both backends (Mosquitto natively; EMQX in docker publishes the same host port), anonymous
as the local brokers allow. `inv mqtt.watch` prints what passes; the simulated devices
(devenv.devices) connect through `connect` too."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from paho.mqtt import client as mqtt
from paho.mqtt.client import ConnectFlags, DisconnectFlags
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from devenv.errors import UserError
from devenv.payload import describe
from devenv.settings import Settings

HOST = "127.0.0.1"
CONNECT_TIMEOUT = 5.0


class BrokerError(UserError):
    """The broker does not answer or refuses, or a filter is not one: the message is the one
    line the user sees."""


def address(settings: Settings) -> str:
    return f"{HOST}:{settings.MQTT_PORT}"


def connect(
    settings: Settings,
    client_id: str,
    subscriptions: Sequence[tuple[str, int]],
    on_message: Callable[[mqtt.Client, mqtt.MQTTMessage], None],
    *,
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
    timeout: float = CONNECT_TIMEOUT,
) -> mqtt.Client:
    """A client with a clean session, its network loop running, subscribed — again after every
    reconnect, since a clean session forgets its subscriptions — and the first SUBACK received,
    so nothing published after this returns is missed. BrokerError when the broker does not
    answer, refuses the client or a subscription."""
    v5 = protocol == MQTTProtocolVersion.MQTTv5
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=protocol,
        clean_session=None if v5 else True,  # v5 starts clean by default
    )
    settled = threading.Event()
    refused: list[str] = []

    def subscribe(
        c: mqtt.Client, _u: Any, _f: ConnectFlags, code: ReasonCode, _p: Properties | None
    ) -> None:
        if code.is_failure:
            refused.append(f"refused the connection of {client_id} ({code})")
            settled.set()
        elif subscriptions:
            # v5: the retain flag as the publisher set it, not only on retained messages.
            c.subscribe(
                [(f, SubscribeOptions(qos=q, retainAsPublished=True)) for f, q in subscriptions]
                if v5
                else list(subscriptions)
            )
        else:
            settled.set()

    def subscribed(
        _c: mqtt.Client, _u: Any, _m: int, codes: list[ReasonCode], _p: Properties | None
    ) -> None:
        failed = [str(code) for code in codes if code.is_failure]
        if failed:
            names = ", ".join(f for f, _ in subscriptions)
            refused.append(f"refused the subscription to {names} ({'; '.join(failed)})")
        settled.set()

    client.on_connect = subscribe
    client.on_subscribe = subscribed
    client.on_message = lambda c, _u, message: on_message(c, message)
    where = address(settings)
    try:
        client.connect(HOST, settings.MQTT_PORT, keepalive=30)
    except OSError as exc:
        raise BrokerError(
            f"the MQTT broker at {where} does not answer ({exc.strerror or exc}): "
            "run `inv up` first (`inv status` shows what runs)"
        ) from None
    client.loop_start()
    if not settled.wait(timeout) or refused:
        close(client)
        why = refused[0] if refused else f"did not answer within {timeout:g} s"
        raise BrokerError(f"the MQTT broker at {where} {why}: is it healthy? see `inv status`")
    return client


def close(client: mqtt.Client, timeout: float = CONNECT_TIMEOUT) -> bool:
    """Disconnect and stop the client's network thread. True when its DISCONNECT went out:
    the broker saw a goodbye, not a dropped connection."""
    said = threading.Event()

    def gone(
        _c: mqtt.Client, _u: Any, _f: DisconnectFlags, code: ReasonCode, _p: Properties | None
    ) -> None:
        if not code.is_failure:
            said.set()

    client.on_disconnect = gone
    if client.disconnect() == mqtt.MQTT_ERR_SUCCESS:
        said.wait(timeout)
    client.loop_stop()
    return said.is_set()


def check_filter(topic_filter: str) -> None:
    """A filter the broker would take: levels split by '/', '+' alone in its level, '#' alone
    in the last one (the broker would answer a bad one only with a refused SUBACK)."""
    levels = topic_filter.split("/")
    bad = (
        not topic_filter
        or "\0" in topic_filter
        or any(("+" in level and level != "+") for level in levels)
        or any(("#" in level and level != "#") for level in levels)
        or "#" in levels[:-1]
    )
    if bad:
        raise BrokerError(
            f"{topic_filter!r} is not an MQTT topic filter: '+' stands alone for one level, "
            "'#' alone for the last (e.g. devices/+/telemetry, devices/#)"
        )


def watch(settings: Settings, topic_filter: str, out: TextIO) -> None:
    """Print every message matching `topic_filter` until Ctrl-C: time, topic, QoS, retain
    flag, payload. Subscribed at QoS 2 with MQTT 5's retain-as-published, so QoS and retain
    are as the publisher sent them."""
    check_filter(topic_filter)
    lock = threading.Lock()

    def show(_client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        line = (
            f"{datetime.now().strftime('%H:%M:%S.%f')[:-3]} {message.topic} "
            f"qos={message.qos} retain={int(message.retain)} {describe(bytes(message.payload))}"
        )
        with lock:
            out.write(line + "\n")
            out.flush()

    client = connect(
        settings,
        f"mqtt-watch-{uuid.uuid4().hex[:8]}",
        [(topic_filter, 2)],
        show,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    try:
        with lock:
            out.write(f"watching {topic_filter} on {address(settings)} (Ctrl-C stops)\n")
            out.flush()
        threading.Event().wait()  # until Ctrl-C (KeyboardInterrupt)
    finally:
        close(client)
