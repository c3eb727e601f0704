"""One self-contained HTML report of a test run (figures embedded as base64 PNG).

Sections: metrics in the paper's format (driver F1 / IoU / OA and extreme F1 in %,
Naive row when present), every metric group of ``metrics_<split>.json``, per-variable
driver statistics (metrics plus flag rates counted from ``drivers_<split>.nc``), the
extreme count per target week, driver maps of the top target weeks and the regional
driver frequency (whole grid unless a region is given).

    python -m vis.report --run log/exp1 --split test --out log/exp1/report_test.html

An existing report is refused unless ``--overwrite``: a report kept for an earlier state of the
run is not replaced without notice.
"""

from __future__ import annotations

import argparse
import base64
import html
import tempfile
from pathlib import Path

import numpy as np

from utils.tables import PAPER_COLUMNS, method_label, paper_rows
from vis.common import grid_figure, parse_period, run_main, save
from vis.driver_maps import plot_sample
from vis.regional_frequency import add_region_args, make_region, regional_frequency, write_outputs
from vis.runs import RunData, load_run, pick_targets, target_span

CSS = """
body { font-family: sans-serif; margin: 24px; color: #222; max-width: 1400px; }
h1 { font-size: 22px; } h2 { font-size: 18px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
th { background: #eee; } td.name { text-align: left; font-weight: bold; }
img { max-width: 100%; border: 1px solid #ddd; margin: 6px 0; }
.note { color: #666; font-size: 12px; }
"""


def _pct(v) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
        return f"{100 * v:.2f}"
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else html.escape(str(v))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="name">{c}</td>' if j == 0 else f"<td>{c}</td>" for j, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def paper_table(run: RunData) -> str:
    """The paper-style table (``utils.tables``: the rows ``test_synthetic.py`` prints).

    Real data have no driver ground truth: the table then lists the drought metrics only.
    """
    m = run.metrics
    s = run.split
    if "drivers" not in m:
        ext = m.get("extremes", m.get("drought", {}))
        ext = dict(ext) if isinstance(ext, dict) else {}
        if "oa" not in ext and isinstance(m.get("oa"), (int, float)):  # real data: OA stored once, top level
            ext["oa"] = m["oa"]
        what = "drought" if run.kind == "real" else "extreme"
        keys = ["f1", "iou", "precision", "recall", "oa"]
        method = html.escape(method_label(run.config, m) if run.config else run.run_dir.name)
        return _table(
            ["method"] + [f"{what} {k} {s}" for k in keys], [[method] + [_pct(ext.get(k)) for k in keys]]
        )
    rows = [
        [html.escape(label)] + [_pct(v) for v in values]
        for label, values in paper_rows(m, method_label(run.config, m))
    ]
    return _table(["method"] + [f"{c} {s}" for c in PAPER_COLUMNS], rows)


def _model(run: RunData) -> str:
    c = run.config
    parts = [f"{k} {c[k]}" for k in ("encoder", "codebook") if c.get(k)]
    return (" · " + html.escape(", ".join(parts))) if parts else ""


def _flat_groups(m: dict, prefix: str = "") -> list[tuple[str, dict]]:
    """Every dict whose values are numbers, with its dotted path (generic: real-data metrics vary)."""
    out = []
    nums = {k: v for k, v in m.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if nums:
        out.append((prefix or "metrics", nums))
    for k, v in m.items():
        if isinstance(v, dict) and k != "per_variable":
            out += _flat_groups(v, f"{prefix}.{k}" if prefix else k)
    return out


RAW_KEYS = {"n_samples", "threshold", "tp", "fp", "fn", "tn", "driver_threshold", "epoch", "weeks", "weeks_before"}
RATE_KEYS = {"precision", "recall", "f1", "iou", "oa", "fpr"}
RAW_GROUPS = ("lift",)  # ratios over chance (drivers.gate.variables.lift): 0.8 is not 80 %


def _value(key: str, v, group: str = "") -> str:
    """Rates in %; counts (integers), settings and ratios as stored.

    A rate is a known rate key, or a float in [0, 1] that is not a setting: the integers 0 and 1
    of a count or a window length (``weeks``) must not read as 0 % and 100 %."""
    number = isinstance(v, (int, float)) and not isinstance(v, bool)
    rate = number and (key in RATE_KEYS or isinstance(v, float)) and 0 <= v <= 1
    if key in RAW_KEYS or group.endswith(RAW_GROUPS) or not rate:
        return html.escape(f"{v:g}" if isinstance(v, float) else str(v))
    return _pct(v)


def metric_groups(run: RunData) -> str:
    groups = _flat_groups(run.metrics)
    if not groups:
        return f'<p class="note">no metrics_{html.escape(run.split)}.json in the run folder</p>'
    cols: list[str] = []
    for _, g in groups:
        cols += [k for k in g if k not in cols]
    rows = [[html.escape(name)] + [_value(c, g[c], name) if c in g else "" for c in cols] for name, g in groups]
    note = '<p class="note">rates in %; counts and settings as stored</p>'
    return _table(["group"] + cols, rows) + note


def flag_rates(run: RunData) -> tuple[np.ndarray, np.ndarray | None]:
    """Fraction of flagged voxels per variable (valid pixels), predicted and true; streamed per target."""
    V = len(run.names)
    if run.kind == "synthetic":  # one variable at a time: the full split does not fit as float

        def rate(name: str) -> np.ndarray:
            da = run.ds[name]
            return np.asarray(
                [np.count_nonzero(da.isel(var=v).values) / da.isel(var=v).size for v in range(V)]
            )

        return rate("driver"), rate("driver_true") if run.has_driver_truth else None
    flagged, count = np.zeros(V), 0
    for i in range(len(run.labels)):
        valid = run.valid_at(i)
        w = run.window(i) > 0
        flagged += w[:, :, valid].sum(axis=(1, 2))
        count += w.shape[1] * int(valid.sum())
    return flagged / max(count, 1), None


def variable_table(run: RunData) -> str:
    per_var = (
        run.metrics.get("drivers", {}).get("per_variable", {})
        if isinstance(run.metrics.get("drivers"), dict)
        else {}
    )
    pred, true = flag_rates(run)
    keys = ["precision", "recall", "f1", "iou", "fpr"]
    header = ["variable"] + [f"{k} (%)" for k in keys if per_var] + ["predicted flags (%)"]
    header += ["true flags (%)"] if true is not None else []
    rows = []
    for v, name in enumerate(run.names):
        row = [html.escape(name)]
        if per_var:
            row += [_pct(per_var.get(name, {}).get(k)) for k in keys]
        row.append(_pct(float(pred[v])))
        if true is not None:
            row.append(_pct(float(true[v])))
        rows.append(row)
    return _table(header, rows)


def plot_variable_metrics(run: RunData, path: Path) -> Path | None:
    per_var = (
        run.metrics.get("drivers", {}).get("per_variable")
        if isinstance(run.metrics.get("drivers"), dict)
        else None
    )
    if not per_var:
        return None
    names = [n for n in run.names if n in per_var] or list(per_var)
    fig, axes = grid_figure(1, 1, panel=4.0)
    fig.set_size_inches(max(6, 0.9 * len(names) + 2), 3.2)
    ax = axes[0, 0]
    w = 0.27
    x = np.arange(len(names))
    for j, (key, color) in enumerate((("f1", "#2ca02c"), ("iou", "#4e79a7"), ("fpr", "#f28e2b"))):
        vals = [100 * float(per_var[n].get(key) or 0.0) for n in names]
        ax.bar(x + (j - 1) * w, vals, w, label=key.upper(), color=color)
    ax.set_xticks(x, names, rotation=45, fontsize=7)
    ax.set_ylim(0, 100)  # rates in %: an all-zero variable stays visibly zero
    ax.set_ylabel("%", fontsize=8)
    ax.legend(fontsize=7)
    ax.set_title("per-variable driver metrics (FPR: flagged when not a driver)", fontsize=9)
    return save(fig, path)


def extreme_counts(run: RunData) -> tuple[list[str], np.ndarray | None, np.ndarray | None]:
    """Labels of the target weeks and their predicted / true extreme pixel counts (valid pixels).

    Only target weeks: the split's first ``delta_t - 1`` weeks have no prediction, and drawing
    them as 0 beside their true extremes would read as misses. No predicted curve for methods
    without extreme predictions.
    """
    t = np.asarray(run.targets, dtype=np.int64)
    valid = run.valid if run.valid is not None else np.ones(run.shape, bool)
    valid = valid[t] if valid.ndim == 3 else valid

    def count(a: np.ndarray) -> np.ndarray:
        return (a[t].astype(np.int64) * valid).sum(axis=(1, 2))

    pred = count(run.extreme) if run.has_prediction else None
    true = count(run.extreme_true) if run.extreme_true is not None else None
    return [run.dates[i] if run.dates else run.labels[i] for i in t], pred, true


def plot_extreme_counts(run: RunData, path: Path) -> Path:
    labels, pred, true = extreme_counts(run)
    fig, axes = grid_figure(1, 1)
    fig.set_size_inches(10, 2.8)
    ax = axes[0, 0]
    x = np.arange(len(labels))
    if pred is not None:
        ax.plot(x, pred, color="#d62728", lw=1, label="predicted")
    if true is not None:
        ax.plot(x, true, color="k", lw=1, ls="--", label="true")
    step = max(1, len(x) // 10)
    ax.set_xticks(x[::step], [labels[i] for i in x[::step]], fontsize=7, rotation=30)
    ax.set_ylabel(("drought" if run.kind == "real" else "extreme") + " pixels", fontsize=8)
    ax.set_xlabel("target week", fontsize=8)
    ax.set_title(target_span(run), fontsize=8)
    ax.legend(fontsize=7)
    return save(fig, path)


def build_report(
    run_dir: str | Path,
    split: str = "test",
    out: str | Path | None = None,
    n: int = 3,
    region_args: argparse.Namespace | None = None,
    n_lags: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the HTML report and return its path; an existing ``out`` raises FileExistsError unless
    ``overwrite`` (checked first, so a refused report costs nothing)."""
    out = Path(out) if out else Path(run_dir) / f"report_{split}.html"
    if out.exists() and not overwrite:
        raise FileExistsError(f"option 'out': {out} exists; pass --overwrite to replace it")
    if out.is_dir():
        raise FileExistsError(f"option 'out': {out} is a folder; give the HTML file to write")
    run = load_run(run_dir, split, n_lags=n_lags)
    parts = [
        f"<h1>IDEE run report: {html.escape(run.run_dir.name)} [{html.escape(split)}]</h1>",
        f'<p class="note">{html.escape(str(run.run_dir.resolve()))} · {run.kind} · '
        f"{html.escape(target_span(run))} · "
        f"{len(run.names)} variables · grid {run.shape[0]}×{run.shape[1]} (row 0 = north) · "
        f"{run.n_lags} lags{_model(run)}</p>",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        parts += [
            "<h2>Metrics (paper format, %)</h2>",
            paper_table(run),
            "<h2>All metric groups</h2>",
            metric_groups(run),
            "<h2>Per-variable drivers</h2>",
            variable_table(run),
        ]
        bars = plot_variable_metrics(run, tmp / "per_variable.png")
        if bars:
            parts.append(_img(bars, "per-variable driver metrics"))
        parts += [
            "<h2>Extremes per target week</h2>",
            _img(plot_extreme_counts(run, tmp / "counts.png"), "extreme counts"),
        ]
        parts.append("<h2>Driver maps</h2>")
        for i in pick_targets(run, n):
            parts.append(_img(plot_sample(run, i, tmp), f"drivers {run.label_text(i)}"))
        parts.append("<h2>Regional driver frequency</h2>")
        parts.append(regional_section(run, region_args, tmp))
    from utils.checkpoints import write_atomic  # (imports torch: only once the report is built)

    out.parent.mkdir(parents=True, exist_ok=True)
    page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>IDEE report "
            f"{html.escape(run.run_dir.name)}</title><style>{CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    # a failed write (a full disk) keeps the old report (--overwrite) and is one line
    write_atomic(out, page.encode("utf-8"), then="free space, or pass another --out")
    return out


def regional_section(run: RunData, a: argparse.Namespace | None, tmp: Path) -> str:
    if a is None:
        a = argparse.Namespace(
            lat_min=None,
            lat_max=None,
            lon_min=None,
            lon_max=None,
            polygon=None,
            box=None,
            share=0.25,
            period=None,
            use_truth=False,
        )
    region = make_region(run, a)
    if not run.has_prediction:
        a.use_truth = True  # drivers-only method: select weeks by the labels
    period = parse_period(*a.period, years=run.kind == "real") if a.period else None
    freq = regional_frequency(run, region, a.share, period, a.use_truth)
    basis = "true" if a.use_truth else "predicted"
    head = (
        f'<p class="note">region {html.escape(region.name)} ({int(region.mask.sum())} px); weeks where ≥ '
        f"{100 * a.share:g}% of its valid pixels are {basis} extremes: {len(freq.weeks)}</p>"
    )
    if not freq.weeks:
        best = max(freq.shares.values(), default=0.0)
        return head + (
            f'<p class="note">no week qualifies (largest share {100 * best:.1f}%); choose a region '
            "(--box / --lat_min.. / --polygon) or a lower --share.</p>"
        )
    files = write_outputs(freq, run, tmp / "freq")
    rows = [
        [html.escape(n)] + [_pct(x) for x in freq.table[v]] + [_pct(freq.per_variable[v])]
        for v, n in enumerate(freq.names)
    ]
    table = _table(["variable"] + [f"lag {k} (%)" for k in range(freq.n_lags)] + ["all lags (%)"], rows)
    return head + table + _img(files["bars"], "frequency bars") + _img(files["maps"], "frequency maps")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--run", required=True, help="run folder holding drivers_<split>.nc and metrics_<split>.json"
    )
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--out", help="HTML file (default: <run>/report_<split>.html)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--n", type=int, default=3, help="driver-map figures (top target weeks, default 3)")
    p.add_argument("--lags", type=int, help="synthetic: weeks before the target (default: config delta_t)")
    add_region_args(p)
    a = p.parse_args(argv)
    if a.n < 0:
        p.error(f"--n {a.n}: the number of driver-map figures cannot be negative (0: none)")
    path = build_report(a.run, a.split, a.out, a.n, a, a.lags, overwrite=a.overwrite)
    print(path)
    return path


if __name__ == "__main__":
    run_main(main)
