"""MQTT publisher of the simulated fleet: one paho client per device, QoS 1, with stats."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from ironbridge.model import InvalidInput
from ironbridge.sim.faults import FaultSchedule
from ironbridge.sim.fleet import AnyFleet, Value, build_fleets
from ironbridge.sim.plan import FleetPlan, MachineKind

_LOGGER = logging.getLogger(__name__)
_CONNECT_WAVE = 25
_CONNECT_PAUSE_S = 0.25

#: Default seconds between reports, per machine kind.
DEFAULT_INTERVALS: Mapping[MachineKind, float] = MappingProxyType(
    {MachineKind.TRUCK: 1.0, MachineKind.EXCAVATOR: 2.0, MachineKind.GENSET: 5.0}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SimConfig:
    """What the fleet simulator needs: the plan, where to connect, how to report.

    ``credentials`` maps every device id of the plan to the password the registry
    issued for it. With ``batch_size`` N > 1 each message carries N samples in the
    columnar form ``{"ts": [ms...], "values": {"m": [...]}}``.
    """

    plan: FleetPlan
    credentials: Mapping[str, str]
    host: str = "127.0.0.1"
    port: int = 1883
    intervals: Mapping[MachineKind, float] = field(default_factory=lambda: dict(DEFAULT_INTERVALS))
    batch_size: int = 1
    qos: int = 1
    seed: int | None = None
    faults: FaultSchedule | None = None
    cold: bool = False
    keepalive_s: int = 30
    topic_prefix: str = "ib/v1"
    max_queued: int = 1000
    reconnect_min_s: int = 1
    reconnect_max_s: int = 30

    def __post_init__(self) -> None:
        missing = [d.device_id for d in self.plan.devices if d.device_id not in self.credentials]
        if missing:
            shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise InvalidInput("credentials", f"no credential for {len(missing)} devices: {shown}")
        if self.batch_size < 1:
            raise InvalidInput("batch_size", "must be at least 1")
        if self.qos not in (0, 1):
            raise InvalidInput("qos", "must be 0 or 1")
        for kind, every in self.intervals.items():
            if every <= 0:
                raise InvalidInput(f"intervals.{kind.value}", "must be positive")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimStats:
    """Counters of the publisher since start, and recent rates (per second)."""

    devices: int
    connected: int
    messages_published: int
    messages_acked: int
    points_published: int
    points_acked: int
    dropped: int
    auth_failures: int
    message_rate: float
    point_rate: float


@dataclass(slots=True)
class _Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    connected: int = 0
    msgs_pub: int = 0
    msgs_ack: int = 0
    pts_pub: int = 0
    pts_ack: int = 0
    dropped: int = 0
    auth_failures: int = 0


class _DeviceLink:
    """One device's MQTT connection (a paho client with its own network thread)."""

    def __init__(self, device_id: str, password: str, cfg: SimConfig, counters: _Counters) -> None:
        self.device_id = device_id
        self.topic = f"{cfg.topic_prefix}/{device_id}/telemetry"
        self.qos = cfg.qos
        self._cfg = cfg
        self._c = counters
        self._pending: dict[int, int] = {}
        self._early: set[int] = set()
        self.connected = False
        self.ever_connected = False
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=device_id,
            clean_session=True,
            protocol=paho.MQTTv311,
        )
        client.username_pw_set(device_id, password)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.max_queued_messages_set(cfg.max_queued)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client

    def start(self) -> None:
        """Connect in the background; paho retries with capped backoff until stopped."""
        self.client.connect_async(self._cfg.host, self._cfg.port, keepalive=self._cfg.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def publish(self, payload: bytes, points: int) -> None:
        """Publish one message (queued by paho while disconnected, up to a bound)."""
        info = self.client.publish(self.topic, payload, qos=self.qos)
        c = self._c
        with c.lock:
            if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
                c.dropped += 1
                return
            c.msgs_pub += 1
            c.pts_pub += points
            if self.qos == 0:
                c.msgs_ack += 1
                c.pts_ack += points
            elif info.mid in self._early:
                self._early.discard(info.mid)
                c.msgs_ack += 1
                c.pts_ack += points
            else:
                self._pending[info.mid] = points

    def _on_publish(self, _c: paho.Client, _u: Any, mid: int, _rc: ReasonCode, _p: Any) -> None:
        c = self._c
        with c.lock:
            points = self._pending.pop(mid, None)
            if points is None:
                self._early.add(mid)  # PUBACK raced ahead of publish() returning
                return
            c.msgs_ack += 1
            c.pts_ack += points

    def _on_connect(self, _c: paho.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._c.lock:
            if rc.is_failure:
                if rc.value in (0x86, 0x87, 4, 5):  # bad user name or password / not authorised
                    self._c.auth_failures += 1
                _LOGGER.debug("device %s: connection refused: %s", self.device_id, rc)
                return
            if not self.connected:
                self._c.connected += 1
            self.connected = True
        _LOGGER.debug(
            "device %s: %s", self.device_id, "reconnected" if self.ever_connected else "connected"
        )
        self.ever_connected = True

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, rc: ReasonCode, _p: Any) -> None:
        with self._c.lock:
            if self.connected:
                self._c.connected -= 1
            self.connected = False
        _LOGGER.debug("device %s: connection lost: %s", self.device_id, rc)


def _columnar(samples: list[tuple[int, dict[str, Value]]]) -> dict[str, Any]:
    """Columnar batch of ``(ts_ms, values)`` samples; keeps measurements present in all."""
    names = [k for k in samples[0][1] if all(k in v for _, v in samples)]
    return {
        "ts": [ts for ts, _ in samples],
        "values": {k: [v[k] for _, v in samples] for k in names},
    }


class FleetSimulator:
    """Runs the vectorised fleet in real time and publishes every machine over MQTT.

    Example::

        plan = plan_fleet(200, 50, 20)
        creds = provision(plan)  # device_id -> password, from the registry
        sim = FleetSimulator(SimConfig(plan=plan, credentials=creds, port=1883))
        sim.run(stop_event)  # blocks until stop_event is set
    """

    def __init__(self, config: SimConfig, *, start_s: float | None = None) -> None:
        self.config = config
        self.intervals: dict[MachineKind, float] = {**DEFAULT_INTERVALS, **config.intervals}
        self._start_s = time.time() if start_s is None else start_s
        self.fleets: dict[MachineKind, AnyFleet] = build_fleets(
            config.plan,
            start_s=self._start_s,
            seed=config.seed,
            faults=config.faults,
            cold=config.cold,
        )
        self._counters = _Counters()
        self._links: dict[str, _DeviceLink] = {}
        self._batches: dict[str, list[tuple[int, dict[str, Value]]]] = {}
        self._history: deque[tuple[float, int, int]] = deque(maxlen=64)
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        """Open every device connection (non-blocking; connections complete in the background)."""
        if self._started:
            return
        self._started = True
        for i, dev in enumerate(self.config.plan.devices):
            link = _DeviceLink(dev.device_id, self.config.credentials[dev.device_id], self.config,
                               self._counters)  # fmt: skip
            self._links[dev.device_id] = link
            link.start()
            if i % _CONNECT_WAVE == _CONNECT_WAVE - 1:
                # Pacing, not waiting: each login costs the broker a bcrypt check, and a
                # few hundred at once on two cores time out and retry noisily.
                time.sleep(_CONNECT_PAUSE_S)
        _LOGGER.info("simulator: connecting %d devices to %s:%d", len(self._links),
                     self.config.host, self.config.port)  # fmt: skip

    def close(self) -> None:
        """Disconnect every device and stop the network threads."""
        for link in self._links.values():
            link.stop()
        self._links.clear()
        self._started = False

    def wait_connected(self, timeout_s: float, count: int | None = None) -> bool:
        """Wait until ``count`` (default: all) devices are connected; False on timeout."""
        want = len(self.config.plan.devices) if count is None else count
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._counters.connected >= want:
                return True
            threading.Event().wait(0.05)
        return self._counters.connected >= want

    # -- simulation ----------------------------------------------------------------------
    def tick(self, kind: MachineKind, dt: float | None = None) -> int:
        """Advance one kind by ``dt`` (default: its report interval) and publish.

        Returns:
            The number of messages published.
        """
        fleet = self.fleets[kind]
        fleet.step(self.intervals[kind] if dt is None else dt)
        ts_ms = int(fleet.t * 1000)
        sent = 0
        batch = self.config.batch_size
        for dev_id, values in zip(fleet.device_ids, fleet.rows(), strict=True):
            link = self._links.get(dev_id)
            if link is None:
                continue
            if batch == 1:
                payload: dict[str, Any] = {"ts": ts_ms, "values": values}
                points = len(values)
            else:
                buf = self._batches.setdefault(dev_id, [])
                buf.append((ts_ms, values))
                if len(buf) < batch:
                    continue
                payload = _columnar(buf)
                points = sum(len(col) for col in payload["values"].values())
                self._batches[dev_id] = []
            link.publish(json.dumps(payload, separators=(",", ":")).encode(), points)
            sent += 1
        return sent

    def run(self, stop: threading.Event) -> None:
        """Connect, then step and publish every kind at its interval until ``stop`` is set.

        Simulation time follows the wall clock; if the loop falls far behind it skips
        ahead rather than bursting.
        """
        self.start()
        try:
            now = time.monotonic()
            due = {kind: now + self.intervals[kind] for kind in self.fleets}
            while not stop.is_set():
                now = time.monotonic()
                for kind, at in due.items():
                    if at <= now:
                        every = self.intervals[kind]
                        if now - at < 5 * every:
                            self.tick(kind)
                            due[kind] = at + every
                        else:  # far behind: one longer step keeps sim time on the wall clock
                            self.tick(kind, every + (now - at))
                            due[kind] = now + every
                self._sample_rates()
                # an empty fleet (a plant-only demo) just waits for the stop
                stop.wait(max(0.0, min(due.values(), default=now + 1.0) - time.monotonic()))
        finally:
            self.close()

    async def run_async(self, stop: asyncio.Event) -> None:
        """Run :meth:`run` in a worker thread until the asyncio ``stop`` event is set."""
        flag = threading.Event()

        async def bridge() -> None:
            await stop.wait()
            flag.set()

        waiter = asyncio.create_task(bridge(), name="sim-stop-bridge")
        try:
            await asyncio.to_thread(self.run, flag)
        finally:
            flag.set()
            waiter.cancel()

    # -- stats ---------------------------------------------------------------------------
    def _sample_rates(self) -> None:
        c = self._counters
        now = time.monotonic()
        if not self._history or now - self._history[-1][0] >= 0.5:
            self._history.append((now, c.msgs_ack, c.pts_ack))

    def stats(self) -> SimStats:
        """Return counters since start and the acked message/point rates of the last ~10 s."""
        c = self._counters
        self._sample_rates()
        with c.lock:
            snap = (c.connected, c.msgs_pub, c.msgs_ack, c.pts_pub, c.pts_ack, c.dropped,
                    c.auth_failures)  # fmt: skip
        msg_rate = pt_rate = 0.0
        if len(self._history) >= 2:
            now_t, now_m, now_p = self._history[-1]
            old = next((h for h in self._history if now_t - h[0] <= 10.0), self._history[0])
            span = now_t - old[0]
            if span > 0:
                msg_rate, pt_rate = (now_m - old[1]) / span, (now_p - old[2]) / span
        return SimStats(
            devices=len(self.config.plan.devices),
            connected=snap[0],
            messages_published=snap[1],
            messages_acked=snap[2],
            points_published=snap[3],
            points_acked=snap[4],
            dropped=snap[5],
            auth_failures=snap[6],
            message_rate=msg_rate,
            point_rate=pt_rate,
        )


__all__ = ["DEFAULT_INTERVALS", "FleetSimulator", "SimConfig", "SimStats"]
