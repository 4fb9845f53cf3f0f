"""Vehicle protocol codec throughput: GB/T 32960 real-time frames and JT/T 808 location reports.

Each decoder is timed against a baseline measured in the same run on the same bytes: the
XOR checksum alone (what any receiver must do anyway), so ``ratio`` = parse cost / checksum
cost.

``--load`` runs the TCP load test instead: the platform in this process (embedded
nats-server, ingest, DuckDB) with its GB/T 32960 and JT/T 808 endpoints, and a load
generator in a child process holding ``--sessions`` concurrent vehicle sessions (half
buses, half trucks) on loopback, each reporting every 10 s with 1 s bursts, for
``--duration`` seconds. Every frame must be answered and every published message
committed by the ingest worker. Reported: frames/s, p50/p99 answer latency seen by the
terminals, memory per session (RSS growth of this process / sessions). Sessions share a
pool of ``--pool`` provisioned vehicles (provisioning 10 000 devices with bcrypt
credentials would dominate the run); the baseline is the heartbeat round trip of one
idle session measured in the same run.

    .venv/bin/python bench/vehicles.py [--quick] [--frames N] [--repeat R]
    .venv/bin/python bench/vehicles.py --load [--quick] [--sessions 10000] [--duration 300]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from ironbridge.codec.binary import xor_checksum
from ironbridge.codec.gbt32960 import (
    BEIJING,
    Alarm,
    Command,
    DriveMotor,
    DriveMotors,
    Edition,
    Extremes,
    Position,
    RealtimeReport,
    SubsystemTemperatures,
    SubsystemVoltages,
    Temperatures,
    VehicleData,
    Voltages,
    decode_frame,
    encode_message,
    flatten_report,
)
from ironbridge.codec.jt808 import (
    Header,
    LocationReport,
    decode_message,
    flatten_location,
    unescape,
)
from ironbridge.codec.jt808 import (
    encode_message as jt_encode,
)

RESULTS = Path(__file__).parent / "results" / "vehicles.json"


def gbt_frames(n: int, cells: int, probes: int) -> list[bytes]:
    """Realistic 2016 real-time frames of one bus fleet (96-cell pack unless told)."""
    frames = []
    for i in range(n):
        t = datetime(2024, 5, 1, 8, 0, i % 60, tzinfo=BEIJING)
        report = RealtimeReport(
            time=t,
            blocks=(
                VehicleData(
                    vehicle_status=1,
                    charging_status=3,
                    running_mode=1,
                    speed_kmh=40.0 + i % 30,
                    odometer_km=12345.6 + i,
                    total_voltage_v=620.4,
                    total_current_a=35.2 - i % 7,
                    soc_pct=70,
                    dcdc_status=1,
                    gear=0x2E,
                    insulation_kohm=21000,
                    accelerator_pedal_pct=20,
                    brake_pedal_pct=0,
                ),
                DriveMotors(
                    motors=(
                        DriveMotor(
                            number=1,
                            status=1,
                            controller_temp_c=45,
                            speed_rpm=3000 + i % 100,
                            torque_nm=210.5,
                            temp_c=60,
                            controller_voltage_v=618.0,
                            controller_current_a=30.0,
                        ),
                    )
                ),
                Position(status=0, longitude=121.473701, latitude=31.230416),
                Extremes(
                    max_voltage_subsystem=1,
                    max_voltage_cell=17,
                    max_cell_voltage_v=3.412,
                    min_voltage_subsystem=1,
                    min_voltage_cell=2,
                    min_cell_voltage_v=3.398,
                    max_temp_subsystem=1,
                    max_temp_probe=3,
                    max_temp_c=31,
                    min_temp_subsystem=1,
                    min_temp_probe=9,
                    min_temp_c=27,
                ),
                Alarm(max_level=0 if i % 10 else 1, flags=0 if i % 10 else 0x11),
                Voltages(
                    subsystems=(
                        SubsystemVoltages(
                            number=1,
                            voltage_v=620.4,
                            current_a=35.2,
                            cell_count=cells,
                            start_index=1,
                            cell_voltages_v=tuple(
                                3.398 + ((i + k) % 15) / 1000 for k in range(cells)
                            ),
                        ),
                    )
                ),
                Temperatures(
                    subsystems=(
                        SubsystemTemperatures(
                            number=1,
                            temps_c=tuple(27 + (i + k) % 5 for k in range(probes)),
                        ),
                    )
                ),
            ),
        )
        frames.append(encode_message(Command.REALTIME, report, vin=f"LBUS{i % 1000:013d}"))
    return frames


def jt_frames(n: int) -> list[bytes]:
    """2013 location reports with the common additional items (mileage, fuel, speed, RSSI)."""
    frames = []
    for i in range(n):
        loc = LocationReport(
            alarm=0 if i % 20 else 0x80,
            status=0xC0003,
            latitude=22.6426 + i * 1e-6,
            longitude=114.032984,
            altitude_m=128,
            speed_kmh=62.5,
            direction=i % 360,
            time=datetime(2024, 5, 1, 8, 0, i % 60, tzinfo=BEIJING),
            items=(
                (0x01, (757 + i).to_bytes(4, "big")),
                (0x02, (1200).to_bytes(2, "big")),
                (0x03, (625).to_bytes(2, "big")),
                (0x30, b"\x15"),
                (0x31, b"\x12"),
            ),
        )
        header = Header(msg_id=0x0200, phone=f"0138{i % 100000000:08d}", serial=i & 0xFFFF)
        frames.append(jt_encode(header, loc))
    return frames


def rate(fn: Callable[[list[bytes]], None], frames: list[bytes], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(frames)
        best = min(best, time.perf_counter() - t0)
    return len(frames) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes for development")
    parser.add_argument("--frames", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--cells", type=int, default=96)
    parser.add_argument("--probes", type=int, default=32)
    parser.add_argument("--load", action="store_true", help="TCP load test of the endpoints")
    parser.add_argument("--sessions", type=int, default=None)
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument(
        "--ramp", type=float, default=None, help="seconds over which sessions connect"
    )
    parser.add_argument("--clients", type=int, default=None, help="load-generator processes")
    parser.add_argument(
        "--endpoint-procs", type=int, default=None, help="endpoint processes sharing the ports"
    )
    parser.add_argument("--load-client", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--load-endpoints", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load_client:
        from vehicles_load import client_main

        client_main(args.load_client)
        return
    if args.load_endpoints:
        from vehicles_load import endpoints_main

        endpoints_main(args.load_endpoints)
        return
    if args.load:
        from vehicles_load import load_test

        load_test(args)
        return
    n = args.frames or (500 if args.quick else 5000)
    repeat = args.repeat or (2 if args.quick else 5)

    gbt = gbt_frames(n, args.cells, args.probes)
    jt = jt_frames(n)

    def gbt_checksum(frames: list[bytes]) -> None:
        for f in frames:
            _ = f[-1] == xor_checksum(f, 2, -1)

    def gbt_decode(frames: list[bytes]) -> None:
        for f in frames:
            decode_frame(f)

    def gbt_flatten(frames: list[bytes]) -> None:
        for f in frames:
            unit = decode_frame(f).unit
            assert isinstance(unit, RealtimeReport)
            flatten_report(unit, Edition.V2016, asset_id="bus")

    def jt_checksum(frames: list[bytes]) -> None:
        for f in frames:
            inner = unescape(f[1:-1])
            _ = inner[-1] == xor_checksum(inner, 0, -1)

    def jt_decode(frames: list[bytes]) -> None:
        for f in frames:
            decode_message(f)

    def jt_flatten(frames: list[bytes]) -> None:
        for f in frames:
            body = decode_message(f).body
            assert isinstance(body, LocationReport)
            flatten_location(body, asset_id="truck")

    rows = []
    for name, frames, base_fn, cases in (
        (
            f"gbt32960 realtime ({args.cells} cells, {args.probes} probes)",
            gbt,
            gbt_checksum,
            (("decode", gbt_decode), ("decode+flatten", gbt_flatten)),
        ),
        (
            "jt808 location 0x0200 (5 items)",
            jt,
            jt_checksum,
            (("decode", jt_decode), ("decode+flatten", jt_flatten)),
        ),
    ):
        base = rate(base_fn, frames, repeat)
        size = sum(map(len, frames)) / len(frames)
        rows.append(
            {
                "protocol": name,
                "operation": "checksum only (baseline)",
                "frames_per_s": base,
                "ratio_to_baseline": 1.0,
                "bytes_per_frame": size,
            }
        )
        for op, fn in cases:
            r = rate(fn, frames, repeat)
            rows.append(
                {
                    "protocol": name,
                    "operation": op,
                    "frames_per_s": r,
                    "ratio_to_baseline": base / r,
                    "bytes_per_frame": size,
                }
            )

    print(f"{'protocol':<44} {'operation':<26} {'frames/s':>12} {'µs/frame':>9} {'x checksum':>10}")
    for row in rows:
        print(
            f"{row['protocol']:<44} {row['operation']:<26} {row['frames_per_s']:>12,.0f} "
            f"{1e6 / row['frames_per_s']:>9.2f} {row['ratio_to_baseline']:>10.1f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "vehicles",
                "frames": n,
                "repeat": repeat,
                "quick": args.quick,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
