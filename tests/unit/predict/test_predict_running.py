"""A model that scores running buckets only: parked machines keep their last prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ironbridge.predict.bundle import RUNNING_SETTLE_ROWS, BundleConfig, PdmBundle, RunCondition
from ironbridge.predict.frames import AssetFrames

COLUMNS = ("engine_speed", "coolant_temp", "oil_pressure")
BUCKET_US = 5_000_000


def _truck(rng: np.random.Generator, n: int, park: slice, wear: float = 0.0) -> np.ndarray:
    """Buckets of one truck: driving, parked over ``park`` (engine off, cooling down)."""
    rpm = np.clip(1300.0 + 250.0 * rng.standard_normal(n), 600.0, 2100.0)
    coolant = 88.0 + 25.0 * wear + 0.8 * rng.standard_normal(n)
    oil = (60.0 + 0.21 * rpm) * (1.0 - 0.5 * wear) + 3.0 * rng.standard_normal(n)
    k = park.stop - park.start
    rpm[park] = 0.0
    oil[park] = 0.0
    cooling = np.exp(-np.arange(1, k + 1) * 5 / 3600)  # 5 s buckets, 1 h time constant
    coolant[park] = 20.0 + (coolant[park.start - 1] - 20.0) * cooling
    return np.column_stack([rpm, coolant, oil])


def _frames(blocks: list[np.ndarray]) -> AssetFrames:
    values = np.concatenate(blocks)
    unit = np.concatenate([np.full(b.shape[0], i) for i, b in enumerate(blocks)])
    ts = np.concatenate([np.arange(b.shape[0], dtype=np.int64) * BUCKET_US for b in blocks])
    return AssetFrames(
        asset_ids=tuple(f"truck-{i}" for i in range(len(blocks))),
        unit=unit,
        ts_us=ts,
        values=values,
        columns=COLUMNS,
        bucket_us=BUCKET_US,
    )


def _config(*running: tuple[str, float]) -> BundleConfig:
    return BundleConfig(
        asset_type="heavy_truck",
        sensors=COLUMNS,
        settings=(),
        bucket_s=5,
        rul_cap_h=24.0,
        running=tuple(RunCondition(*c) for c in running),
    )


def _last_finite(values: np.ndarray) -> float:
    return float(values[np.isfinite(values)][-1])


def test_parked_trucks_keep_their_health_and_wear_still_ranks_worst(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    # Training: 30 trucks over 200 s (40 buckets), half parked briefly (a short cool-down).
    train = _frames([_truck(rng, 40, slice(20, 20 + 5 * (i % 2))) for i in range(30)])
    # Scoring: a healthy truck parked for its last 20 min (coolant falls ~20 °C), a healthy
    # truck driving, and a wearing truck that parks for its last 2 min.
    live = _frames(
        [
            _truck(rng, 300, slice(60, 300)),
            _truck(rng, 300, slice(300, 300)),
            _truck(rng, 300, slice(276, 300), wear=0.6),
        ]
    )
    rows = np.arange(len(live))
    parked, driving, wearing = (live.unit == 0), (live.unit == 1), (live.unit == 2)

    plain, _, _ = PdmBundle.fit(_config(), train, {})
    s = plain.score_rows(live, rows)
    # Without the gate the long cool-down looks like a fault: this is the demo's false alarm.
    assert s.health[parked][-1] < 50.0

    gated, metrics, _ = PdmBundle.fit(_config(("engine_speed", 300.0)), train, {})
    # Settled running rows only: 5..39 of a truck that ran throughout, 5..19 and 30..39 of
    # one parked over 20..24.
    assert metrics["anomaly_train_rows"] == 15 * 35 + 15 * 25
    gated.save(tmp_path / "v1")
    gated = PdmBundle.load(tmp_path / "v1")
    assert gated.config.running == (("engine_speed", 300.0),)
    s = gated.score_rows(live, rows)
    # Parked buckets are not scored (NaN is not published), running ones are once settled.
    settle = RUNNING_SETTLE_ROWS
    assert np.isnan(s.health[parked][60:]).all()
    assert np.isnan(s.health[parked][: settle - 1]).all()
    assert np.isfinite(s.health[parked][settle - 1 : 60]).all()
    assert np.isfinite(s.health[driving][settle - 1 :]).all()
    # What stands for the parked truck is its health when it last ran; the wearing truck's
    # last running health is far below both healthy trucks'.
    h_parked = _last_finite(s.health[parked])
    h_driving = _last_finite(s.health[driving])
    h_wearing = _last_finite(s.health[wearing])
    assert h_parked > 80.0
    assert h_driving > 80.0
    assert h_wearing < 30.0


def test_running_rows_are_settled_stretches_each_its_own_group() -> None:
    assert RUNNING_SETTLE_ROWS == 6
    rpm = np.array(
        [0, 600, 600, 600, 600, 600, 600, 900, 300, 600, 600, 600, 600, 600, 600, 600]
        + [700] * 7,  # a second asset, running from its first bucket
        dtype=np.float64,
    )
    frames = AssetFrames(
        asset_ids=("a", "b"),
        unit=np.array([0] * 16 + [1] * 7),
        ts_us=np.concatenate([np.arange(16), np.arange(7)]) * BUCKET_US,
        values=np.column_stack([rpm, np.full(23, 88.0), np.full(23, 200.0)]),
        columns=COLUMNS,
        bucket_us=BUCKET_US,
    )
    mask, groups = _config(("engine_speed", 550.0)).running_rows(frames)
    # Runs: a rows 1-7 (settled from 6), a rows 9-15 (from 14), b rows 16-22 (from 21).
    assert np.flatnonzero(mask).tolist() == [6, 7, 14, 15, 21, 22]
    assert groups.tolist() == [1, 1, 2, 2, 3, 3]
    every, by_asset = _config().running_rows(frames)
    assert every.all()
    assert by_asset.tolist() == frames.unit.tolist()


def test_running_round_trips_through_json_and_reads_older_versions() -> None:
    c = _config(("engine_speed", 300.0), ("coolant_temp", 82.0))
    assert c.to_json()["running"] == [
        {"measurement": "engine_speed", "above": 300.0},
        {"measurement": "coolant_temp", "above": 82.0},
    ]
    assert BundleConfig.from_json(c.to_json()) == c
    assert _config().to_json()["running"] is None
    assert BundleConfig.from_json(_config().to_json()).running == ()
    old = _config().to_json()
    del old["running"]  # versions written before the gate existed
    assert BundleConfig.from_json(old).running == ()
    # Versions written when the gate took one condition stored it as an object.
    one = {**old, "running": {"measurement": "engine_speed", "above": 700}}
    assert BundleConfig.from_json(one).running == (("engine_speed", 700.0),)


def test_every_condition_must_hold_so_a_warm_up_is_not_running() -> None:
    """Hand-computed: a truck parks, restarts cold and warms up past 82 °C."""
    rpm = [1300.0] * 8 + [0.0] * 3 + [1300.0] * 12
    coolant = [88.0] * 8 + [80.0, 76.0, 73.0] + [74, 76, 78, 80, 81, 82, 83, 84, 85, 85, 85, 85]
    n = len(rpm)
    frames = AssetFrames(
        asset_ids=("a",),
        unit=np.zeros(n, dtype=np.int64),
        ts_us=np.arange(n, dtype=np.int64) * BUCKET_US,
        values=np.column_stack([rpm, coolant, np.full(n, 300.0)]),
        columns=COLUMNS,
        bucket_us=BUCKET_US,
    )
    # Speed alone: rows 0-7 run (settled from 5), rows 11-22 run (settled from 16).
    mask, groups = _config(("engine_speed", 700.0)).running_rows(frames)
    assert np.flatnonzero(mask).tolist() == [5, 6, 7, *range(16, 23)]
    assert groups.tolist() == [1] * 3 + [2] * 7
    # Warm as well: after the restart, running starts at row 17 (83 °C, the first above
    # 82; row 16 is at 82), so it is settled from row 22: the warm-up is not scored.
    mask, groups = _config(("engine_speed", 700.0), ("coolant_temp", 82.0)).running_rows(frames)
    assert np.flatnonzero(mask).tolist() == [5, 6, 7, 22]
    assert groups.tolist() == [1, 1, 1, 2]
    # The order of the conditions does not matter; a lower warm threshold lets more in.
    mask, _ = _config(("coolant_temp", 79.0), ("engine_speed", 700.0)).running_rows(frames)
    assert np.flatnonzero(mask).tolist() == [5, 6, 7, 19, 20, 21, 22]  # warm from row 14


def test_a_condition_on_a_column_the_asset_never_reported_never_holds() -> None:
    n = 10
    values = np.column_stack([np.full(n, 1300.0), np.full(n, np.nan), np.full(n, 300.0)])
    frames = AssetFrames(
        asset_ids=("a",),
        unit=np.zeros(n, dtype=np.int64),
        ts_us=np.arange(n, dtype=np.int64) * BUCKET_US,
        values=values,
        columns=COLUMNS,
        bucket_us=BUCKET_US,
    )
    mask, _ = _config(("engine_speed", 700.0), ("coolant_temp", -1e9)).running_rows(frames)
    assert not mask.any()
    mask, _ = _config(("engine_speed", 700.0)).running_rows(frames)
    assert np.flatnonzero(mask).tolist() == [5, 6, 7, 8, 9]


def _restart_cold(rng: np.random.Generator, drive: int, park: int, warm: int) -> np.ndarray:
    """A healthy truck that drives, parks long enough to cool, then restarts and warms up.

    After the restart the coolant climbs from 60 °C at 2 °C a bucket to the thermostat's
    88 °C, and the oil is more viscous while cold (higher pressure), as in the simulator.
    """
    blocks = [_truck(rng, drive + park, slice(drive, drive + park))]
    rpm = np.clip(1300.0 + 250.0 * rng.standard_normal(warm), 600.0, 2100.0)
    coolant = np.minimum(60.0 + 2.0 * np.arange(warm), 88.0) + 0.8 * rng.standard_normal(warm)
    visc = 1.0 + 0.5 * np.clip((85.0 - coolant) / 65.0, 0.0, 1.0)
    oil = (60.0 + 0.21 * rpm) * visc + 3.0 * rng.standard_normal(warm)
    blocks.append(np.column_stack([rpm, coolant, oil]))
    return np.concatenate(blocks)


def test_a_warm_gate_keeps_a_restart_after_a_long_park_from_scoring_low() -> None:
    rng = np.random.default_rng(1)
    # Training holds warm driving only (as the demo's 2.5 min do): no warm-up at all.
    train = _frames([_truck(rng, 40, slice(40, 40)) for _ in range(30)])
    live = _frames([_restart_cold(rng, 60, 120, 60), _truck(rng, 240, slice(240, 240), wear=0.6)])
    rows = np.arange(len(live))
    restart, wearing = live.unit == 0, live.unit == 1
    after_restart = np.arange(len(live))[restart][180:]  # the 60 buckets after the park

    speed, _, _ = PdmBundle.fit(_config(("engine_speed", 700.0)), train, {})
    s = speed.score_rows(live, rows)
    # Running by speed alone, the warm-up is scored and looks like a fault.
    assert np.nanmin(s.health[after_restart]) < 50.0

    warm_gate = (("engine_speed", 700.0), ("coolant_temp", 82.0))
    warm, _, _ = PdmBundle.fit(_config(*warm_gate), train, {})
    s = warm.score_rows(live, rows)
    # 82 °C is reached 11-12 buckets after the restart: nothing before it is scored, and
    # from there on the truck is healthy, so no scored bucket of it falls below 80.
    h = s.health[restart]
    assert np.isnan(h[180 : 180 + 11 + RUNNING_SETTLE_ROWS - 1]).all()
    assert np.isfinite(h[-20:]).all()
    assert np.nanmin(h) > 80.0
    # The gate does not hide wear: a wearing engine runs hotter, not colder.
    assert _last_finite(s.health[wearing]) < 30.0
