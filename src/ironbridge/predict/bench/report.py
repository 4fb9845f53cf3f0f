"""Plain-text tables of benchmark results."""

from __future__ import annotations

from typing import Any

__all__ = ["format_results"]


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))
    body = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join([line, "  ".join("-" * w for w in widths), *body])


def format_results(kind: str, results: dict[str, Any]) -> str:
    """Render the dict returned by ``run_cmapss`` / ``run_skab`` / ``run_nab`` as a table."""
    if kind == "cmapss":
        rows = [
            [
                name,
                f"{r['rmse_clipped']:.2f}",
                f"{r['score_clipped']:.1f}",
                f"{r['rmse_raw']:.2f}",
                f"{r['score_raw']:.1f}",
                f"{r['interval_coverage_clipped']:.2f}",
                f"{r['train_seconds']:.1f}",
                f"{r.get('train_cpu_seconds', float('nan')):.1f}",
            ]
            for name, r in results["subsets"].items()
        ]
        header = ["subset", "RMSE clip", "score clip", "RMSE raw", "score raw", "PI90 cov"]
        header.extend(["train s", "train CPU s"])
        return _table(header, rows)
    if kind == "skab":
        r = results
        rows = [[str(r["n_files"]), f"{r['f1']:.3f}", f"{r['far']:.2f}", f"{r['mar']:.2f}"]]
        return _table(["files", "F1", "FAR %", "MAR %"], rows)
    rows = [
        [name] + [f"{v[p]:.1f}" for p in ("standard", "reward_low_FP_rate", "reward_low_FN_rate")]
        for name, v in results["files"].items()
    ]
    return _table(["file", "standard", "low FP", "low FN"], rows)
