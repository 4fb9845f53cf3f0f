from pathlib import Path

import numpy as np
import pytest

from ironbridge.model import InvalidInput, NotFound
from ironbridge.predict.bench.cmapss import load_subset
from ironbridge.predict.bench.nab import load_nab_series, window_rows
from ironbridge.predict.bench.skab import (
    SKAB_EWMA_SPAN,
    SKAB_SMOOTH_GRID,
    choose_smoothing,
    ewma,
    load_skab_csv,
    roughness_floor,
    run_skab,
)


def nasa_line(unit: int, cycle: int, base: float) -> str:
    settings = "-0.0007 -0.0004 100.0"
    sensors = " ".join(f"{base + i:.4f}" for i in range(21))
    # NASA's files end every line with trailing spaces.
    return f"{unit} {cycle} {settings} {sensors}  "


def test_cmapss_loader_reads_nasa_format(tmp_path: Path):
    train = [nasa_line(1, c, c) for c in (1, 2, 3)] + [nasa_line(2, c, 10 + c) for c in (1, 2)]
    # Test rows out of order on purpose: the loader sorts by unit, then cycle.
    test = [nasa_line(2, 1, 0), nasa_line(1, 2, 0), nasa_line(1, 1, 0)]
    (tmp_path / "train_FD009.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test_FD009.txt").write_text("\n".join(test) + "\n")
    (tmp_path / "RUL_FD009.txt").write_text("112 \n98 \n")
    ds = load_subset(tmp_path, "FD009")
    assert ds.train_unit.tolist() == [1, 1, 1, 2, 2]
    assert ds.train_sensors.shape == (5, 21)
    assert ds.train_settings.shape == (5, 3)
    assert ds.train_sensors[4, 0] == 12.0
    assert ds.train_target(None).tolist() == [2, 1, 0, 1, 0]
    assert ds.test_unit.tolist() == [1, 1, 2]
    assert ds.test_cycle.tolist() == [1, 2, 1]
    assert ds.test_rul.tolist() == [112, 98]


def test_cmapss_loader_errors(tmp_path: Path):
    with pytest.raises(NotFound):
        load_subset(tmp_path, "FD001")
    (tmp_path / "train_FD001.txt").write_text("1 2 3\n")
    (tmp_path / "test_FD001.txt").write_text("1 2 3\n")
    (tmp_path / "RUL_FD001.txt").write_text("5\n")
    with pytest.raises(InvalidInput):
        load_subset(tmp_path, "FD001")


def write_skab(path: Path, n: int, fault_from: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    lines = ["datetime;A;B;C;anomaly;changepoint"]
    for i in range(n):
        a, b = rng.normal(size=2)
        c = a + 0.1 * rng.normal()
        anomaly = i >= fault_from
        if anomaly:
            c += 5.0
        lines.append(f"2020-03-09 10:{i // 60:02d}:{i % 60:02d};{a};{b};{c};{float(anomaly)};0.0")
    path.write_text("\n".join(lines) + "\n")


def test_skab_loader_and_run_on_every_csv(tmp_path: Path):
    (tmp_path / "valve9").mkdir()
    write_skab(tmp_path / "valve9" / "1.csv", 600, 500, 1)
    write_skab(tmp_path / "2.csv", 600, 450, 2)
    (tmp_path / "free").mkdir()
    (tmp_path / "free" / "anomaly-free.csv").write_text("datetime;A\n2020-03-09 10:00:00;1.0\n")
    names, x, y = load_skab_csv(tmp_path / "2.csv")
    assert names == ["A", "B", "C"]
    assert x.shape == (600, 3)
    assert y is not None
    assert int(y.sum()) == 150
    res = run_skab(tmp_path)
    assert res["n_files"] == 2
    assert res["f1"] > 0.9


def test_nab_loader_and_windows(tmp_path: Path):
    p = tmp_path / "x.csv"
    p.write_text(
        "timestamp,value\n2014-01-01 00:00:00,1.0\n2014-01-01 00:05:00,2.0\n"
        "2014-01-01 00:10:00,3.0\n2014-01-01 00:15:00,4.0\n"
    )
    ts, val = load_nab_series(p)
    assert val.tolist() == [1, 2, 3, 4]
    rows = window_rows(ts, [["2014-01-01 00:05:00.000000", "2014-01-01 00:10:00.000000"]])
    assert rows == [(1, 2)]


def test_skab_settings_come_from_training_rows_only(tmp_path: Path):
    # The floor: 400 rows with lag-1 autocorrelation rho hold 400(1-rho)/(1+rho) effective
    # samples; 30 of them at rho = 370/430, roughness sqrt(2(1-rho)) = sqrt(120/430).
    assert roughness_floor(400) == pytest.approx((120 / 430) ** 0.5)
    assert roughness_floor(30) == float("inf")
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(400, 3))
    det_floor = roughness_floor(400)
    assert choose_smoothing(noise, det_floor) in SKAB_SMOOTH_GRID
    # Spikes in the held-out training rows force the longest window.
    spiky = noise.copy()
    spiky[350:352] += 50.0
    assert choose_smoothing(spiky, det_floor) == SKAB_SMOOTH_GRID[-1]
    # A random walk (column D) is far smoother than the floor; white noise is at sqrt(2).
    write_skab(tmp_path / "1.csv", 600, 500, 1)
    lines = (tmp_path / "1.csv").read_text().splitlines()
    head = lines[0].replace(";anomaly", ";D;anomaly")
    body = [
        ln.replace(";1.0;0.0", f";{w};1.0;0.0").replace(";0.0;0.0", f";{w};0.0;0.0")
        for ln, w in zip(lines[1:], np.cumsum(rng.normal(size=600)), strict=True)
    ]
    (tmp_path / "1.csv").write_text("\n".join([head, *body]) + "\n")
    res = run_skab(tmp_path)
    assert res["files"]["1.csv"]["left_out"] == ["D"]  # the wandering column


def test_ewma_matches_its_recursion_and_starts_at_the_first_value():
    rng = np.random.default_rng(3)
    x = rng.normal(size=2000).cumsum()
    a = 2.0 / (SKAB_EWMA_SPAN + 1.0)
    want = np.empty_like(x)
    prev = x[0]
    for i, v in enumerate(x):
        prev = (1.0 - a) * prev + a * v
        want[i] = prev
    np.testing.assert_allclose(ewma(x, SKAB_EWMA_SPAN), want, rtol=1e-7, atol=1e-6)
    assert ewma(x, 1).tolist() == x.tolist()
    assert ewma(np.full(10, 4.0), 40) == pytest.approx(np.full(10, 4.0))
