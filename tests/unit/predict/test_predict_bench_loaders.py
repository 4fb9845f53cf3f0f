from pathlib import Path

import numpy as np
import pytest

from ironbridge.model import InvalidInput, NotFound
from ironbridge.predict.bench.cmapss import load_subset
from ironbridge.predict.bench.nab import load_nab_series, window_rows
from ironbridge.predict.bench.skab import load_skab_csv, run_skab


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
