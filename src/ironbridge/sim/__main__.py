"""Command line of the simulators: ``python -m ironbridge.sim fleet ...``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from ironbridge.model import InvalidInput
from ironbridge.sim.faults import FaultSchedule
from ironbridge.sim.mqtt import DEFAULT_INTERVALS, FleetSimulator, SimConfig
from ironbridge.sim.plan import FleetPlan, MachineKind, plan_fleet


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``sim`` (the lead's CLI can mount it as a subcommand)."""
    p = argparse.ArgumentParser(prog="ironbridge sim", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fleet", help="simulate trucks, excavators and gensets over MQTT")
    f.add_argument("--trucks", type=int, default=200)
    f.add_argument("--excavators", type=int, default=50)
    f.add_argument("--gensets", type=int, default=20)
    f.add_argument("--mqtt", default="127.0.0.1:1883", help="broker host:port")
    f.add_argument("--credentials", type=Path, help="JSON file {device_id: password}")
    f.add_argument("--password", help="one password for every device (development only)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--batch", type=int, default=1, help="samples per message (columnar if > 1)")
    f.add_argument("--truck-interval", type=float, default=DEFAULT_INTERVALS[MachineKind.TRUCK])
    f.add_argument(
        "--excavator-interval", type=float, default=DEFAULT_INTERVALS[MachineKind.EXCAVATOR]
    )
    f.add_argument("--genset-interval", type=float, default=DEFAULT_INTERVALS[MachineKind.GENSET])
    f.add_argument("--faults", type=int, default=0, help="inject N random faults within 1 h")
    f.add_argument("--duration", type=float, default=0.0, help="seconds to run (0: forever)")
    f.add_argument("--print-plan", action="store_true", help="print the device list as JSON")
    return p


def plan_json(plan: FleetPlan) -> str:
    """Return the device list of ``plan`` as JSON (for provisioning a registry)."""
    return json.dumps(
        [
            {
                "device_id": d.device_id,
                "asset_id": d.asset_id,
                "type_name": d.type_name,
                "attributes": dict(d.attributes),
            }
            for d in plan.devices
        ],
        ensure_ascii=False,
        indent=1,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    plan = plan_fleet(args.trucks, args.excavators, args.gensets, seed=args.seed)
    if args.print_plan:
        sys.stdout.write(plan_json(plan) + "\n")
        return 0
    if args.credentials:
        creds: dict[str, str] = json.loads(args.credentials.read_text(encoding="utf-8"))
    elif args.password:
        creds = {d.device_id: args.password for d in plan.devices}
    else:
        sys.stderr.write("give --credentials FILE or --password PW\n")
        return 2
    host, _, port = args.mqtt.rpartition(":")
    try:
        config = SimConfig(
            plan=plan,
            credentials=creds,
            host=host or "127.0.0.1",
            port=int(port),
            intervals={
                MachineKind.TRUCK: args.truck_interval,
                MachineKind.EXCAVATOR: args.excavator_interval,
                MachineKind.GENSET: args.genset_interval,
            },
            batch_size=args.batch,
            faults=FaultSchedule.random(plan, args.faults, seed=args.seed) if args.faults else None,
        )
    except (InvalidInput, ValueError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    sim = FleetSimulator(config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runner = threading.Thread(target=sim.run, args=(stop,), name="sim-fleet", daemon=True)
    runner.start()
    waited = 0.0
    while not stop.wait(5.0):
        waited += 5.0
        s = sim.stats()
        sys.stdout.write(
            f"connected {s.connected}/{s.devices}  msgs {s.messages_acked}/{s.messages_published}"
            f"  points {s.points_acked}  {s.message_rate:.0f} msg/s  {s.point_rate:.0f} pt/s"
            f"  dropped {s.dropped}  auth failures {s.auth_failures}\n"
        )
        sys.stdout.flush()
        if args.duration and waited >= args.duration:
            stop.set()
    runner.join(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
