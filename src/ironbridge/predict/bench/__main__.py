"""``python -m ironbridge.predict.bench {cmapss,skab,nab} --data DIR``."""

from __future__ import annotations

import argparse
import json
import sys

from ironbridge.predict.bench import format_results, run_cmapss, run_nab, run_skab


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark, print its table, optionally write the JSON results."""
    ap = argparse.ArgumentParser(prog="python -m ironbridge.predict.bench")
    ap.add_argument("kind", choices=["cmapss", "skab", "nab"])
    ap.add_argument("--data", required=True, help="directory holding the data set")
    ap.add_argument("--subsets", default="FD001,FD003", help="C-MAPSS subsets, comma-separated")
    ap.add_argument("--json", default=None, help="also write the results to this file")
    args = ap.parse_args(argv)
    if args.kind == "cmapss":
        subsets = [s.strip().upper() for s in args.subsets.split(",") if s.strip()]
        res = run_cmapss(args.data, subsets)
    elif args.kind == "skab":
        res = run_skab(args.data)
    else:
        res = run_nab(args.data)
    sys.stdout.write(format_results(args.kind, res) + "\n")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(res, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
