"""Figures of datacube runs name the steps by date when the predictions file carries dates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml


def _cube_run(tmp_path: Path, dates: bool) -> Path:
    """A datacube drivers file as the test script writes it: 10 weekly steps from 2018-05-07, delta_t 3."""
    from utils.predictions import write_driver_predictions

    T, H, W = 10, 4, 5
    drv = np.zeros((2, T, H, W), np.uint8)
    drv[0, 4:7, 1:3, 1:3] = 1
    prob = np.full((T, H, W), 0.1, np.float32)
    prob[:2] = np.nan
    prob[6, 1:3, 1:4] = 0.9
    run = tmp_path / ("cube" if dates else "nodates")
    write_driver_predictions(
        run / "drivers_test.nc", driver=drv, driver_true=None, extreme_prob=prob, extreme_true=None,
        var_names=["t2m_daily", "soil_water"], time_labels=range(20, 20 + T), y=range(H), x=range(W),
        target=np.arange(T) >= 2,
        dates=pd.date_range("2018-05-07", periods=T, freq="7D") if dates else None,
    )
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "cube", "delta_t": 3, "dataset": "datacube"}))
    return run


def test_predictions_file_carries_the_dates(tmp_path):
    run = _cube_run(tmp_path, dates=True)
    with xr.open_dataset(run / "drivers_test.nc") as ds:
        assert ds["date"].dims == ("time",)
        assert str(ds["date"].values[0])[:10] == "2018-05-07" and int(ds["time"][0]) == 20


def test_run_labels_and_lags_by_date(tmp_path):
    from vis.runs import load_run

    run = load_run(_cube_run(tmp_path, dates=True))
    assert run.dates[0] == "2018-05-07" and run.dates[-1] == "2018-07-09"
    assert run.label_text(6) == "2018-06-18"
    assert run.lag_labels(6) == ["2018-06-18", "2018-06-11", "2018-06-04"]
    assert run.lag_labels(1)[:2] == ["2018-05-14", "2018-05-07"] and run.lag_labels(1)[2] == "t=19"
    plain = load_run(_cube_run(tmp_path, dates=False))
    assert plain.dates is None and plain.label_text(6) == "t=26" and plain.lag_labels(6)[0] == "t=26"


def test_driver_map_and_report_titles_use_dates(tmp_path, figures):
    from vis import driver_maps
    from vis.report import extreme_counts
    from vis.runs import load_run

    run_dir = _cube_run(tmp_path, dates=True)
    driver_maps.main(["--run", str(run_dir), "--times", "26", "--out", str(tmp_path / "out")])
    fig = figures[0]
    assert fig._suptitle.get_text().endswith("drivers before 2018-06-18")
    lags = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("lag ")]
    assert lags[0] == "lag 0 (target)\n2018-06-18" and any(t.endswith("2018-06-04") for t in lags)
    labels, _, _ = extreme_counts(load_run(run_dir))
    assert labels[0] == "2018-05-21"
