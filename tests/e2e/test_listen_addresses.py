"""Where the apps answer: on loopback, and on a Linux Docker engine also on the engine bridge's
address, where the containerised gateway sends (host-gateway); on no other address of this
machine (its eth0's, another bridge's). The connections go to this machine's own addresses."""

from __future__ import annotations

import socket

import pytest

from devenv import backends
from devenv.backends.docker import interface_ipv4
from tests.support.clients import Platform

pytestmark = pytest.mark.e2e


def host_addresses() -> dict[str, str]:
    """The IPv4 address of each network interface of this machine that has one."""
    found = {}
    for _index, name in socket.if_nameindex():
        address = interface_ipv4(name)
        if address:
            found[name] = address
    return found


def answers(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((address, port)) == 0


def test_the_servers_answer_on_loopback_and_the_engine_bridge_only(stack: Platform) -> None:
    settings = stack.settings
    bridge = backends.select(settings, lambda _line: None).upstream_hosts()
    given = [host for host in settings.value("APP_EXTRA_BIND_HOSTS").split(",") if host]
    expected = {"127.0.0.1", *bridge, *given}
    addresses = host_addresses()
    assert addresses.get("lo") == "127.0.0.1", addresses
    ports = (settings.INGESTION_PORT, settings.QUERY_PORT, settings.ACTIONS_PORT)
    wrong = [
        f"{name} {address}:{port} {'answers' if answered else 'refuses'}"
        for name, address in sorted(addresses.items())
        for port in ports
        if (answered := answers(address, port)) != (address in expected)
    ]
    assert not wrong, f"expected answers on {sorted(expected)} only: {wrong}"
