"""Train and evaluate IDE and the baselines on one synthetic benchmark; write the paper-style table.

    python scripts/benchmark_table.py --root_synthetic DIR --methods all --seeds 3 [--epochs N] [--out DIR]
    python scripts/benchmark_table.py ... --seeds 1 --first_seed 2   # only seed 2 (e.g. on another machine)
    python scripts/benchmark_table.py --root_synthetic DIR --methods ide_cnn deepmil iforest --seeds 1 \\
        --epochs 2 --max_train_batches 50        # any other --<option> VALUE goes to every run

Every (method, seed) run trains into ``<out>/runs/<method>_s<seed>/`` through the
shared entry points (train_synthetic / test_synthetic with the method's model), then
is tested on the val and test splits. A run whose ``metrics_val.json`` and
``metrics_test.json`` exist is skipped, so an interrupted table resumes; each run's
``train_seconds.json`` sums the wall time of its training calls for "train min". The table
(driver F1 / IoU / OA in % on val and test, mean +- std over seeds, extreme F1 where a
method predicts extremes, the Naive reference always) goes to ``<out>/table.md`` and
``<out>/table.csv``. Splits, crop and variables come from the datacube's attributes
unless ``--config`` names a preset. SimpleNet's frozen backbone is the encoder of the
same seed's IDE run with the same encoder when that run is in the table (else random).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    """A table row: its label, the method's options the table fixes, and defaults its command line may
    override. IDE has one row per encoder; every other registered method one row."""

    label: str
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


IDE_BY_ENCODER = {"CNN_3D": "ide_cnn", "Swin_3D": "ide_swin", "Mamba": "ide_mamba"}
# the paper's order of the method groups (models.methods.MethodSpec.family)
GROUP_ORDER = ("attribution", "one-class", "reconstruction", "MIL", "IDE")
SPLITS = ("val", "test")
TRAIN_SECONDS = "train_seconds.json"  # in a run folder: the wall time of its training calls, summed
COLUMNS = ("f1", "iou", "oa")


def table_rows() -> dict[str, Row]:
    """Row key -> Row, in the paper's order, from the method registry."""
    from models.methods import METHODS, method_spec

    rows: dict[str, Row] = {}
    for group in GROUP_ORDER:
        for name in METHODS.names():
            spec = method_spec(name)
            if spec.family != group:
                continue
            if name == "ide":
                for encoder, key in IDE_BY_ENCODER.items():
                    rows[key] = Row(f"IDE, {encoder} backbone", {"method": "ide", "encoder": encoder})
            else:
                rows[name] = Row(spec.label, {"method": name, **spec.table_options}, dict(spec.table_defaults))
    return rows


def data_options(root: Path) -> dict[str, Any]:
    """Splits, crop and variables of a generated benchmark, from its datacube attributes."""
    import xarray as xr

    path = root / f"datacube_{root.name}.nc"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist (generate it: python -m dataset.generate_synthetic)")
    with xr.open_dataset(path, decode_times=False) as ds:
        attrs, sizes = dict(ds.attrs), dict(ds.sizes)
        names = [str(v) for v in ds["var"].values]
    opts: dict[str, Any] = {"x_max": sizes["x"], "y_max": sizes["y"], "variables": names,
                            "in_channels_dynamic": len(names)}
    for split in ("train", "val", "test"):
        if f"times_{split}" in attrs:
            opts[f"times_{split}"] = [int(t) for t in str(attrs[f"times_{split}"]).split()]
    return opts


def run_one(name: str, seed: int, base: dict[str, Any], out: Path, epochs: int | None, log: Callable) -> dict:
    """Train (unless finished) and test one (method, seed) through the run API; returns {split: metrics}."""
    from config import load_config
    from utils import run as runs

    row = table_rows()[name]
    run = out / "runs" / f"{name}_s{seed}"
    metrics_files = {s: run / f"metrics_{s}.json" for s in SPLITS}
    if all(p.is_file() for p in metrics_files.values()):
        log(f"[table] {name} seed {seed}: done before, skipped")
        return {s: json.loads(p.read_text()) for s, p in metrics_files.items()}
    opts = {"dir_log": str(out / "runs"), "name": f"{name}_s{seed}", "seed": seed, **row.options}
    if epochs is not None and "n_epochs" not in row.options:
        opts["n_epochs"] = epochs
    preset = base.get("config")
    options = {**row.defaults, **{k: v for k, v in base.items() if k != "config"}, **opts}
    if name == "simplenet":
        options["simplenet_backbone"] = _simplenet_backbone(load_config(preset, options).encoder, out, seed)
    last = run / "last.pth"
    if not _finished(last, load_config(preset, options).n_epochs):
        log(f"[table] train {name} seed {seed}")
        if not last.is_file():  # a fresh start: an earlier call that saved no checkpoint left nothing
            (run / TRAIN_SECONDS).unlink(missing_ok=True)
        t0 = time.perf_counter()
        try:
            runs.train(load_config(preset, {**options, "resume": last.is_file(), "overwrite": not last.is_file()}))
        finally:  # an interrupted call's time counts too: its epochs are part of the run
            _add_train_seconds(run, time.perf_counter() - t0)
    t_train = _train_seconds(run)
    res: dict[str, Any] = {}
    for split in SPLITS:
        log(f"[table] test {name} seed {seed} on {split}")
        fixed = {}  # the threshold chosen on val serves the test split too (one calibration per run)
        chosen = (res.get("val") or {}).get("driver_threshold")
        if chosen is not None and chosen.get("rule") != "fixed":
            fixed = {"driver_threshold_rule": "fixed", "driver_threshold": chosen["threshold"]}
        res[split] = runs.evaluate(load_config(preset, {**options, **fixed}), split)
        if fixed:  # record how the threshold was chosen (on val), not the fixed value it was passed as
            res[split]["driver_threshold"] = chosen
        res[split]["seconds_train"] = t_train
        metrics_files[split].write_text(json.dumps(res[split], indent=1))
    return res


def _train_seconds(run: Path) -> float | None:
    """Wall seconds of every training call on ``run`` (``TRAIN_SECONDS``); None when none was timed."""
    path = run / TRAIN_SECONDS
    if not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"benchmark_table: {path} is unreadable ({err}); delete it (the run's 'train min' "
                         "is then left out of the table) and rerun") from None


def _add_train_seconds(run: Path, seconds: float) -> None:
    """Add one training call's wall time to ``run``'s record, so a resumed run reports its whole training."""
    if not run.is_dir():  # the call failed before making the run folder
        return
    total = (_train_seconds(run) or 0.0) + seconds
    (run / TRAIN_SECONDS).write_text(json.dumps({"seconds": total}))


def _finished(last: Path, n_epochs: Any) -> bool:
    if not last.is_file() or n_epochs is None:
        return False
    from utils.checkpoints import read_checkpoint

    return int(read_checkpoint(last)["epoch"]) + 1 >= int(n_epochs)


def _simplenet_backbone(encoder: str, out: Path, seed: int) -> str:
    """SimpleNet's frozen encoder: the same seed's IDE run with the same encoder (it must be in the table)."""
    ide_run = out / "runs" / f"{IDE_BY_ENCODER[encoder]}_s{seed}"
    from utils.run_folder import best_checkpoint

    ckpt = best_checkpoint(ide_run)
    if ckpt is None:
        raise SystemExit(
            f"benchmark_table.py: error: SimpleNet seed {seed} needs the {IDE_BY_ENCODER[encoder]} run of the "
            f"same seed as its frozen encoder ({ide_run} has no checkpoint): add {IDE_BY_ENCODER[encoder]} "
            "to --methods"
        )
    return str(ckpt)


def naive_rows(base: dict[str, Any]) -> dict[str, dict]:
    """Naive reference per split (needs no training)."""
    from config import load_config
    from dataset.families.synthetic import SyntheticFamily, naive_reference

    cfg = load_config(base.get("config"), {k: v for k, v in base.items() if k != "config"})
    family = SyntheticFamily()
    return {s: {"drivers": naive_reference(family.load(cfg, s), cfg.delta_t)} for s in SPLITS}


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    a = 100 * np.asarray(values, dtype=float)
    return f"{a.mean():.2f}" if len(a) == 1 else f"{a.mean():.2f} ± {a.std(ddof=1):.2f}"


def summarise(results: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """One row per method: mean +- std over seeds of the pooled driver metrics and extreme F1."""
    rows = []
    for name, runs in results.items():
        label = "Naive" if name == "naive" else table_rows()[name].label
        row: dict[str, Any] = {"method": label, "key": name, "seeds": len(runs)}
        for split in SPLITS:
            for col in COLUMNS:
                row[f"{col}_{split}"] = _mean_std([r[split]["drivers"]["pooled"][col] for r in runs])
            ext = [(r[split].get("extremes") or {}).get("f1") for r in runs]
            ext = [e for e in ext if e is not None]
            row[f"extreme_f1_{split}"] = _mean_std(ext)
        secs = [r["val"].get("seconds_train") for r in runs if r["val"].get("seconds_train") is not None]
        row["train_minutes"] = f"{np.mean(secs) / 60:.1f}" if secs else "-"
        rows.append(row)
    return rows


HEADER = ["method", "F1 val", "IoU val", "OA val", "F1 test", "IoU test", "OA test",
          "extreme F1 val", "extreme F1 test", "seeds", "train min"]
KEYS = ["method", "f1_val", "iou_val", "oa_val", "f1_test", "iou_test", "oa_test",
        "extreme_f1_val", "extreme_f1_test", "seeds", "train_minutes"]


def write_table(rows: list[dict[str, Any]], out: Path) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(str(r[k]) for k in KEYS) + " |" for r in rows]
    md = "\n".join(lines) + "\n"
    (out / "table.md").write_text(md)
    with open(out / "table.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows([[r[k] for k in KEYS] for r in rows])
    return md


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    ap.add_argument("--root_synthetic", required=True, help="benchmark folder (datacube_<name>.nc ...)")
    ap.add_argument("--methods", nargs="+", default=["all"], help=f"all or any of: {' '.join(table_rows())}")
    ap.add_argument("--seeds", type=int, default=3, help="number of seeds per method")
    ap.add_argument("--first_seed", type=int, default=0,
                    help="seeds first_seed .. first_seed + seeds - 1: split a table's seeds over processes or "
                         "machines that share --out, then one call with all seeds (finished runs are skipped) "
                         "writes the whole table")
    ap.add_argument("--epochs", type=int, default=None, help="n_epochs of every trained method")
    ap.add_argument("--out", default="log/benchmark_table", help="output folder (runs/, table.md, table.csv)")
    ap.add_argument("--config", default=None, help="YAML preset instead of the datacube's attributes")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads (0: torch's default); 1 is ~10x faster on a shared, busy CPU")
    args, extra = ap.parse_known_args(argv)
    if args.seeds < 1 or args.first_seed < 0:
        ap.error(f"--seeds must be >= 1 and --first_seed >= 0 (got {args.seeds} and {args.first_seed})")
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    rows = table_rows()
    names = list(rows) if args.methods == ["all"] else args.methods
    unknown = [n for n in names if n not in rows]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(rows)}")
    if "simplenet" in names:  # its frozen encoder is the IDE run of the same encoder: that run comes first
        names = sorted(names, key=lambda n: not n.startswith("ide_"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.root_synthetic)
    from config import parse_overrides

    base: dict[str, Any] = {"root_synthetic": str(root)}
    base.update({"config": args.config} if args.config else data_options(root))
    base.update(parse_overrides(extra))

    def log(msg: str) -> None:
        print(msg, flush=True)
        with open(out / "table.log", "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    log(f"[table] methods {' '.join(names)}; seeds {' '.join(map(str, seeds))}; options {base}")
    results: dict[str, list[dict]] = {"naive": [naive_rows(base)]}
    for name in names:
        results[name] = [run_one(name, seed, base, out, args.epochs, log) for seed in seeds]
    order = ["naive", *[n for n in rows if n in names]]
    md = write_table(summarise({n: results[n] for n in order}), out)
    print(md)
    log(f"[table] wrote {out / 'table.md'} and {out / 'table.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
