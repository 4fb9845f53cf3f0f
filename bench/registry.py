"""Registry hot paths on SQLite: device auth (bcrypt vs cache), device_route, writes.

Baseline measured in the same run: one raw bcrypt check at the device cost.
Usage: .venv/bin/python bench/registry.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt

from ironbridge.model import Asset, Device, parse_asset_type
from ironbridge.store.sql import SqlRegistry
from ironbridge.store.sql.credentials import DEVICE_BCRYPT_COST


def per_call_us(fn: Callable[[], object], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_assets = 200 if args.quick else 2000
    reps = 50 if args.quick else 500

    with tempfile.TemporaryDirectory() as tmp:
        reg = SqlRegistry.open(f"sqlite:///{Path(tmp) / 'r.sqlite3'}")
        reg.create_tenant(None, "root", "Root", None)
        truck = parse_asset_type(
            {"name": "truck", "measurements": [{"name": f"m{i}"} for i in range(20)]}
        )
        reg.put_asset_type(None, "root", truck)
        t0 = time.perf_counter()
        for i in range(n_assets):
            reg.create_asset(None, Asset(id=f"t{i}", tenant_id="root", type_name="truck", name="t"))
        create_us = (time.perf_counter() - t0) / n_assets * 1e6
        _, secret = reg.create_device(
            None, Device(id="d0", tenant_id="root", asset_ids=("t0", "t1"))
        )
        hashed = bcrypt.hashpw(secret.encode(), bcrypt.gensalt(DEVICE_BCRYPT_COST))

        baseline = per_call_us(lambda: bcrypt.checkpw(secret.encode(), hashed), max(reps // 10, 5))

        def uncached() -> None:
            reg._verified.invalidate("d0")
            reg.verify_device("d0", secret)

        rows = {
            "bcrypt checkpw (baseline)": baseline,
            "verify_device uncached": per_call_us(uncached, max(reps // 10, 5)),
            "verify_device cached": per_call_us(lambda: reg.verify_device("d0", secret), reps),
            "device_route (2 assets x 20 series)": per_call_us(
                lambda: reg.device_route("d0"), reps
            ),
            "get_asset": per_call_us(lambda: reg.get_asset(None, "t5"), reps),
            "create_asset (+20 series)": create_us,
        }
        reg.close()

    print(f"{'operation':40} {'µs/call':>12} {'x baseline':>11}")
    for name, us in rows.items():
        print(f"{name:40} {us:12.1f} {us / baseline:11.3f}")
    out = Path(__file__).parent / "results" / "registry.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps({"quick": args.quick, "n_assets": n_assets, "us_per_call": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
