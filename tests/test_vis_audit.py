"""vis/ audit: synthetic --period labels, metric values in the report, and one-line errors for bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from tests.test_vis import _hand_real_run, make_cube, make_real_run, make_synthetic_run
from vis import driver_maps, plot_synthetic, regional_frequency, report
from vis.common import parse_period, run_main
from vis.runs import load_run


def _cli_error(capsys, main, argv: list[str]) -> str:
    """Run a vis command line as ``python -m`` does: exit code 2 and one error line, no traceback.

    argparse's option errors print the usage above their one line; that line is returned."""
    with pytest.raises(SystemExit) as err:
        run_main(lambda: main(argv))
    assert err.value.code == 2
    text = capsys.readouterr().err.strip()
    assert "Traceback" not in text, text
    if not text.startswith("usage:"):
        assert "\n" not in text, text
    return text.splitlines()[-1]


def _html_table(page: str) -> dict[str, dict[str, str]]:
    """First HTML table of ``page`` as {row name: {column: cell text}}."""
    rows = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", r) for r in re.findall(r"<tr>(.*?)</tr>", page)]
    header = rows[0]
    return {r[0]: dict(zip(header[1:], r[1:])) for r in rows[1:]}


# ------------------------------------------------------------------------------ --period


def _paper_labels_run(tmp_path: Path) -> Path:
    """Synthetic run whose time labels are 4-digit like the paper's test split (2081..); delta_t 2.

    1 variable, 2 x 2 grid, 6 weeks 2081..2086; every week is fully extreme; the driver flags
    one pixel at week 2083 and two pixels at week 2085."""
    drv = np.zeros((1, 6, 2, 2), np.uint8)
    drv[0, 2, 0, 0] = 1
    drv[0, 4, 1, :] = 1
    ext = np.ones((6, 2, 2), np.uint8)
    return make_synthetic_run(tmp_path / "paper", drv, ext, list(range(2081, 2087)), delta_t=2)


def test_period_of_synthetic_runs_is_time_labels_not_years(tmp_path):
    assert parse_period("2083", "2084", years=False) == (2083, 2084)
    assert parse_period("2018", "2018") == (2018000, 2018999)  # real weeks: a 4-digit year widens
    run = _paper_labels_run(tmp_path)
    files = regional_frequency.main(
        ["--run", str(run), "--period", "2083", "2084", "--share", "1", "--out", str(tmp_path / "f")]
    )
    assert files["weeks"].read_text().split() == ["2083", "1.0000", "2084", "1.0000"]
    rows = files["csv"].read_text().splitlines()
    # lag 0: 1 flag (2083) + 0 (2084) of 8 pixels; lag 1: 0 (2082) + 1 (2083) of 8
    assert rows[1] == "var_01,0.125000,0.125000,0.125000"


def test_period_without_target_weeks_is_named(tmp_path, capsys):
    run = _paper_labels_run(tmp_path)
    line = _cli_error(capsys, regional_frequency.main, ["--run", str(run), "--period", "1", "5"])
    assert line.startswith("error: --period") and "no target week" in line and "2081 .. 2086" in line
    line = _cli_error(capsys, regional_frequency.main, ["--run", str(run), "--period", "2083", "end"])
    assert "option --period" in line and "end" in line


# ------------------------------------------------------------------------------ report values


def test_report_shows_rates_in_percent_and_settings_as_stored(tmp_path):
    """0/1 integers (a gate window of 1 week) are not 100 %; lifts are ratios, not rates."""
    drv = np.zeros((1, 4, 2, 2), np.uint8)
    ext = np.zeros((4, 2, 2), np.uint8)
    metrics = {
        "n_samples": 3,
        "extremes": {"precision": 0.5, "recall": 1, "f1": 0.25, "iou": 0.125, "oa": 0.875},
        "drivers": {
            "pooled": {"precision": 0.4, "recall": 0.2, "f1": 0.3, "iou": 0.2, "oa": 0.9, "tp": 1, "fp": 0},
            "gate": {"threshold": 0.5, "weeks": 1, "weeks_before": 0, "variables": {"lift": {"var_01": 0.8}}},
        },
    }
    run = load_run(make_synthetic_run(tmp_path / "m", drv, ext, [1, 2, 3, 4], 2, metrics=metrics))
    table = _html_table(report.metric_groups(run))

    def cell(group: str, key: str) -> str:
        return table[group][key]

    assert cell("extremes", "recall") == "100.00" and cell("extremes", "iou") == "12.50"
    assert cell("drivers.pooled", "tp") == "1" and cell("drivers.pooled", "f1") == "30.00"
    assert cell("drivers.gate", "weeks") == "1" and cell("drivers.gate", "weeks_before") == "0"
    assert cell("drivers.gate", "threshold") == "0.5"
    assert cell("drivers.gate.variables.lift", "var_01") == "0.8"


# ------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("cut.geojson", '{"type": "Polygon", "coordinates": [[1, 2]', "not valid GeoJSON"),
        ("flat.geojson", '{"type": "Polygon", "coordinates": [[1, 2], [3, 4], [5, 6]]}', "3 [lon, lat]"),
        ("list.geojson", "[1, 2]", "expected a GeoJSON object"),
        ("point.geojson", '{"type": "Point", "coordinates": [1, 2]}', "holds no Polygon"),
        ("short.csv", "lat,lon\n45\n44,5\n43,6\n", "every row needs two numbers"),
        ("binary.csv", b"\xff\xfe\x00\x01", "not a text CSV"),
        ("two.csv", "x,y\n0,0\n1,1\n", "at least 3 vertices"),
    ],
)
def test_malformed_polygon_is_one_line(tmp_path, capsys, name, text, expected):
    run = _hand_real_run(tmp_path)
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = _cli_error(capsys, regional_frequency.main, ["--run", str(run), "--polygon", str(path)])
    assert f"--polygon {path}" in line and expected in line


def test_lat_lon_csv_polygon_selects_the_pixels_inside(tmp_path):
    """A lat,lon CSV (columns swapped) selects the pixel whose centre it encloses, and only that one."""
    run = load_run(_hand_real_run(tmp_path))
    lat, lon = float(run.lat[2, 1]), float(run.lon[2, 1])
    csv_path = tmp_path / "p.csv"
    d = 0.3
    corners = [(lat - d, lon - d), (lat - d, lon + d), (lat + d, lon + d), (lat + d, lon - d)]
    csv_path.write_text("lat,lon\n" + "".join(f"{a},{b}\n" for a, b in corners))
    mask = regional_frequency.polygon_region(csv_path, run.shape, run.lat, run.lon).mask
    assert mask.sum() == 1 and mask[2, 1]


def test_region_without_pixels_names_the_grid(tmp_path, capsys):
    run = _hand_real_run(tmp_path)
    argv = ["--run", str(run), "--lat_min", "0", "--lat_max", "1", "--lon_min", "0", "--lon_max", "1"]
    line = _cli_error(capsys, regional_frequency.main, argv)
    assert "holds no pixel of the 4 x 4 grid" in line and "lat 42.00..45.60" in line and "--box" in line


def test_missing_drivers_file_names_split_and_fix(tmp_path, capsys):
    run = _hand_real_run(tmp_path)
    line = _cli_error(capsys, driver_maps.main, ["--run", str(run), "--split", "val"])
    assert "option --split val" in line and "choose --split test" in line and "--save_predictions true" in line
    line = _cli_error(capsys, report.main, ["--run", str(tmp_path / "nope"), "--out", str(tmp_path / "r.html")])
    assert "option --run" in line and "no such folder" in line


def test_counts_and_lags_must_be_positive(tmp_path, capsys):
    run = str(_hand_real_run(tmp_path))
    assert "--n -1" in _cli_error(capsys, driver_maps.main, ["--run", run, "--n", "-1"])
    assert "--n 0" in _cli_error(capsys, driver_maps.main, ["--run", run, "--n", "0"])
    assert "--n -2" in _cli_error(capsys, report.main, ["--run", run, "--n", "-2"])
    assert "option --lags 0" in _cli_error(capsys, driver_maps.main, ["--run", run, "--lags", "0"])
    line = _cli_error(capsys, regional_frequency.main, ["--run", run, "--share", "25"])
    assert "--share" in line and "fraction in [0, 1]" in line
    line = _cli_error(capsys, report.main, ["--run", run, "--share", "25"])
    assert "--share" in line


def test_plot_synthetic_times_are_checked(tmp_path, capsys):
    cube = make_cube(tmp_path)  # labels 1..16
    out = ["--out", str(tmp_path / "figs")]
    line = _cli_error(capsys, plot_synthetic.main, ["--path", str(cube), "--times", "3", "99", "5", *out])
    assert "--times: 99 not in the cube" in line and "1..16" in line
    line = _cli_error(capsys, plot_synthetic.main, ["--path", str(cube), "--times", "9", "2", *out])
    assert "--times 9 2" in line and "starts after it ends" in line
    assert not (tmp_path / "figs").exists()


def test_real_driver_map_legend_names_droughts(tmp_path, figures):
    from matplotlib.text import Text

    drv = np.zeros((1, 1, 4, 3, 3), np.uint8)  # 4 lags: the legend column is drawn
    drought = np.zeros((1, 3, 3), np.uint8)
    run = load_run(make_real_run(tmp_path / "r", drv, drought, np.ones((3, 3)), ["2021010"]))
    driver_maps.plot_sample(run, 0, tmp_path / "figs")
    texts = [t.get_text() for t in figures[0].findobj(Text)]
    assert any("predicted drought" in t and "true drought" in t for t in texts)
    assert not any("extreme" in t for t in texts)


def _fake_chromium(folder: Path, body: str) -> None:
    """A 'chromium' on PATH that runs ``body`` (sh) with the --screenshot path in $shot."""
    folder.mkdir()
    exe = folder / "chromium"
    exe.write_text('#!/bin/sh\nfor a in "$@"; do case "$a" in --screenshot=*) shot="${a#--screenshot=}";; esac; done\n'
                   + body + "\n")
    exe.chmod(0o755)


def test_render_report_never_passes_an_old_screenshot(tmp_path, monkeypatch, capsys):
    from scripts import render_report

    page = tmp_path / "r.html"
    page.write_text("<html></html>")
    png = tmp_path / "r.png"
    png.write_bytes(b"old")
    _fake_chromium(tmp_path / "fail", 'echo "line 1" >&2; echo "GPU process exited" >&2; exit 0')
    monkeypatch.setenv("PATH", str(tmp_path / "fail"))
    assert render_report.main([str(page), str(png)]) == 2
    line = one_line(capsys)
    assert "GPU process exited" in line and str(page) in line and png.read_bytes() == b"old"
    _fake_chromium(tmp_path / "ok", 'printf "\\211PNG" > "$shot"')
    monkeypatch.setenv("PATH", str(tmp_path / "ok"))
    assert render_report.main([str(page), str(png)]) == 0
    assert png.read_bytes() == b"\x89PNG" and f"replacing {png}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["r.png"]


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err
