"""Public predictive-maintenance benchmarks (C-MAPSS, SKAB, NAB) on a user's copy of the data."""

from ironbridge.predict.bench.cmapss import load_subset, run_cmapss
from ironbridge.predict.bench.nab import run_nab
from ironbridge.predict.bench.report import format_results
from ironbridge.predict.bench.skab import load_skab_csv, run_skab

__all__ = ["format_results", "load_skab_csv", "load_subset", "run_cmapss", "run_nab", "run_skab"]
