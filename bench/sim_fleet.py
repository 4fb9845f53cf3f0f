"""Cost of the fleet simulator: vectorised physics, message building, and 300 live MQTT links.

Usage: .venv/bin/python bench/sim_fleet.py [--quick] [--no-mqtt]
"""

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ironbridge.sim import FleetSimulator, SimConfig, build_fleets, plan_fleet
from ironbridge.sim.mqtt import DEFAULT_INTERVALS

RESULTS = Path(__file__).parent / "results" / "sim_fleet.json"


def bench_physics(sim_seconds: int) -> dict:
    plan = plan_fleet(200, 50, 20)
    fleets = build_fleets(plan, start_s=1_700_006_400.0)
    step_cpu = rows_cpu = enc_cpu = 0.0
    last_rows: dict = {}
    for t in range(1, sim_seconds + 1):
        for kind, fleet in fleets.items():
            every = int(DEFAULT_INTERVALS[kind])
            if t % every:
                continue
            a = time.process_time()
            fleet.step(float(every))
            b = time.process_time()
            rows = fleet.rows()
            c = time.process_time()
            for r in rows:
                json.dumps({"ts": 0, "values": r}, separators=(",", ":")).encode()
            d = time.process_time()
            step_cpu += b - a
            rows_cpu += c - b
            enc_cpu += d - c
            last_rows[kind] = rows
    # baseline: JSON-encoding the same number of fixed payloads (the unavoidable floor)
    msgs = sum(len(last_rows[k]) * (sim_seconds // int(DEFAULT_INTERVALS[k])) for k in last_rows)
    fixed = [r for k in last_rows for r in last_rows[k]]
    a = time.process_time()
    for i in range(msgs):
        json.dumps({"ts": 0, "values": fixed[i % len(fixed)]}, separators=(",", ":")).encode()
    base_cpu = time.process_time() - a
    per_s = 1.0 / sim_seconds
    return {
        "machines": len(plan.devices),
        "sim_seconds": sim_seconds,
        "messages": msgs,
        "step_cpu_pct_of_core": 100 * step_cpu * per_s,
        "rows_cpu_pct_of_core": 100 * rows_cpu * per_s,
        "encode_cpu_pct_of_core": 100 * enc_cpu * per_s,
        "baseline_json_only_cpu_pct": 100 * base_cpu * per_s,
        "sim_total_vs_baseline": (step_cpu + rows_cpu + enc_cpu) / max(base_cpu, 1e-9),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_mqtt(seconds: float) -> dict:
    plan = plan_fleet(230, 50, 20)
    creds = {d.device_id: f"pw-{d.device_id}" for d in plan.devices}
    with tempfile.TemporaryDirectory() as tmp:
        mport, cport = _free_port(), _free_port()
        users = "\n".join(f'{{user: "{d}", password: "{p}"}}' for d, p in creds.items())
        conf = Path(tmp) / "nats.conf"
        conf.write_text(
            f"server_name: bench\nlisten: 127.0.0.1:{cport}\n"
            f'jetstream {{ store_dir: "{tmp}/js" }}\nmqtt {{ listen: 127.0.0.1:{mport} }}\n'
            f"authorization {{ users = [\n{users}\n] }}\n"
        )
        proc = subprocess.Popen(
            [str(Path(sys.prefix) / "bin" / "nats-server"), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", mport), timeout=0.2).close()
                    break
                except OSError:
                    threading.Event().wait(0.05)
            sim = FleetSimulator(SimConfig(plan=plan, credentials=creds, port=mport))
            stop = threading.Event()
            runner = threading.Thread(target=sim.run, args=(stop,))
            t0 = time.monotonic()
            runner.start()
            ok = sim.wait_connected(60)
            connect_s = time.monotonic() - t0
            cpu0, w0 = time.process_time(), time.monotonic()
            stop.wait(seconds)
            cpu = time.process_time() - cpu0
            wall = time.monotonic() - w0
            stats = sim.stats()
            stop.set()
            runner.join(30)
        finally:
            proc.terminate()
            proc.wait(10)
    return {
        "devices": len(plan.devices),
        "all_connected": ok,
        "connect_seconds": round(connect_s, 2),
        "messages_acked": stats.messages_acked,
        "messages_published": stats.messages_published,
        "message_rate": round(stats.message_rate, 1),
        "point_rate": round(stats.point_rate, 1),
        "dropped": stats.dropped,
        "process_cpu_pct_of_core": round(100 * cpu / wall, 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-mqtt", action="store_true")
    args = ap.parse_args()
    phys = bench_physics(120 if args.quick else 1800)
    out = {"physics": phys}
    print(f"{'270 machines, default intervals':40s}  % of one core (real time)")
    for k in ("step", "rows", "encode"):
        print(f"  {k:38s}  {phys[k + '_cpu_pct_of_core']:.3f}")
    print(f"  {'baseline: JSON encode only':38s}  {phys['baseline_json_only_cpu_pct']:.3f}")
    print(f"  {'simulator total / baseline':38s}  {phys['sim_total_vs_baseline']:.2f}x")
    if not args.no_mqtt:
        live = bench_mqtt(10 if args.quick else 30)
        out["mqtt"] = live
        print("300 devices over MQTT (one paho client each, QoS 1):")
        for k, v in live.items():
            print(f"  {k:38s}  {v}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
