"""Train and evaluate IDE and the baselines on one synthetic benchmark; write the paper-style table.

    python scripts/benchmark_table.py --root_synthetic DIR --methods all --seeds 3 [--epochs N] [--out DIR]
    python scripts/benchmark_table.py ... --seeds 1 --first_seed 2   # only seed 2 (e.g. on another machine)
    python scripts/benchmark_table.py --root_synthetic DIR --methods ide_cnn deepmil iforest --seeds 1 \\
        --epochs 2 --max_train_batches 50        # any other --<option> VALUE goes to every run

Every (method, seed) run trains into ``<out>/runs/<method>_s<seed>/`` through the
shared entry points (train_synthetic / test_synthetic with the method's model), then
is tested on the val and test splits. A run whose ``metrics_val.json`` and
``metrics_test.json`` exist is skipped, so an interrupted table resumes. The table
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
class Method:
    """A table row: label, how to build the model (None: IDE), the options it fixes and
    its defaults (options the table's command line may override)."""

    label: str
    build: str | None  # "module:callable" of the model builder, None for IDE
    options: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)


def _ide(encoder: str) -> Method:
    return Method(f"IDE, {encoder} backbone", None, {"method": "ide", "encoder": encoder})


METHODS: dict[str, Method] = {
    "ig1": Method("Integrated Gradients I", "Baselines_Attribution.models:IGModel", {"method": "ig1"}),
    "ig2": Method("Integrated Gradients II", "Baselines_Attribution.models:IGModel", {"method": "ig2"}),
    "ocsvm": Method("OCSVM", "Baselines_OneClass.models:build", {"method": "ocsvm", "n_epochs": 1}),
    "iforest": Method("Isolation Forest", "Baselines_OneClass.models:build",
                      {"method": "iforest", "n_epochs": 1}),
    "simplenet": Method("SimpleNet", "Baselines_OneClass.models:build", {"method": "simplenet"}),
    "stealnet": Method("STEALNet", "Baselines_Reconstruction.models:build", {"method": "stealnet"}),
    "uniad": Method("UniAD", "Baselines_Reconstruction.models:build", {"method": "uniad"}),
    # one top-k per variable: with one per (sample, week) a single variable fills the positive
    # top-k (docs/baselines.md); RTFM and MGFN keep the published grouping. DeepMIL compares
    # bags of equal size: without, its hinge collapsed to one constant score on 2 of 3 seeds
    "deepmil": Method("DeepMIL", "Baselines_MIL.models:MILModel", {"method": "deepmil"},
                      {"mil_topk_per": "variable", "mil_match_bags": True}),
    "arnet": Method("ARNet", "Baselines_MIL.models:MILModel", {"method": "arnet"},
                    {"mil_topk_per": "variable"}),
    "rtfm": Method("RTFM", "Baselines_MIL.models:MILModel", {"method": "rtfm"}),
    "mgfn": Method("MGFN", "Baselines_MIL.models:MILModel", {"method": "mgfn"}),
    "ide_cnn": _ide("CNN_3D"),
    "ide_swin": _ide("Swin_3D"),
    "ide_mamba": _ide("Mamba"),
}
IDE_BY_ENCODER = {"CNN_3D": "ide_cnn", "Swin_3D": "ide_swin", "Mamba": "ide_mamba"}
SPLITS = ("val", "test")
COLUMNS = ("f1", "iou", "oa")


def _builder(spec: str | None) -> Callable | None:
    if spec is None:
        return None
    import importlib

    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


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


def _argv(options: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, val in options.items():
        vals = val if isinstance(val, (list, tuple)) else [val]
        out += [f"--{key}", *[str(v) for v in vals]]
    return out


def _best_checkpoint(run: Path) -> Path | None:
    for name in ("best_driver_F1_model.pth", "best_F1_model.pth", "best_loss_model.pth", "last.pth"):
        if (run / name).is_file():
            return run / name
    return None


def run_one(name: str, seed: int, base: list[str], out: Path, epochs: int | None, log: Callable) -> dict:
    """Train (unless finished) and test one (method, seed); returns {split: metrics}."""
    import test_synthetic
    import train_synthetic

    method = METHODS[name]
    run = out / "runs" / f"{name}_s{seed}"
    metrics_files = {s: run / f"metrics_{s}.json" for s in SPLITS}
    if all(p.is_file() for p in metrics_files.values()):
        log(f"[table] {name} seed {seed}: done before, skipped")
        return {s: json.loads(p.read_text()) for s, p in metrics_files.items()}
    opts = {"dir_log": out / "runs", "name": f"{name}_s{seed}", "seed": seed, **method.options}
    if epochs is not None and "n_epochs" not in method.options:
        opts["n_epochs"] = epochs
    if name == "simplenet":
        opts.update(_simplenet_backbone(base, out, seed, log))
    argv = [*_argv(method.defaults), *base, *_argv(opts)]
    build = _builder(method.build)
    t0 = time.perf_counter()
    last = run / "last.pth"
    if not _finished(last, opts.get("n_epochs")):
        resume = ["--resume", "true"] if last.is_file() else ["--overwrite", "true"]
        log(f"[table] train {name} seed {seed}")
        if train_synthetic.main([*argv, *resume], build=build) != 0:
            raise RuntimeError(f"training {name} seed {seed} failed")
    t_train = time.perf_counter() - t0
    res: dict[str, Any] = {}
    for split in SPLITS:
        log(f"[table] test {name} seed {seed} on {split}")
        fixed = []  # the threshold chosen on val serves the test split too (one calibration per run)
        chosen = (res.get("val") or {}).get("driver_threshold")
        if chosen is not None and chosen.get("rule") != "fixed":
            fixed = ["--driver_threshold_rule", "fixed", f"--driver_threshold={chosen['threshold']!r}"]
        if test_synthetic.main([*argv, "--split", split, *fixed], build=build) != 0:
            raise RuntimeError(f"testing {name} seed {seed} on {split} failed")
        res[split] = json.loads(metrics_files[split].read_text())
        res[split]["seconds_train"] = t_train
        metrics_files[split].write_text(json.dumps(res[split], indent=1))
    return res


def _finished(last: Path, n_epochs: Any) -> bool:
    if not last.is_file() or n_epochs is None:
        return False
    from utils.checkpoints import read_checkpoint

    return int(read_checkpoint(last)["epoch"]) + 1 >= int(n_epochs)


def _simplenet_backbone(base: list[str], out: Path, seed: int, log: Callable) -> dict[str, Any]:
    from config import parse_config

    encoder = parse_config(base).encoder
    ide_run = out / "runs" / f"{IDE_BY_ENCODER[encoder]}_s{seed}"
    ckpt = _best_checkpoint(ide_run)
    if ckpt is None:
        log(f"[table] SimpleNet seed {seed}: no {ide_run.name} run, the frozen backbone stays random")
        return {}
    return {"simplenet_backbone": ckpt}


def naive_rows(base: list[str]) -> dict[str, dict]:
    """Naive reference per split (needs no training)."""
    from config import parse_config
    from dataset.synthetic import SyntheticDataset
    from test_synthetic import naive_reference

    cfg = parse_config(base)
    sets = {s: SyntheticDataset.from_config(cfg, s) for s in SPLITS}
    return {s: {"drivers": naive_reference(ds, cfg.delta_t)} for s, ds in sets.items()}


def _mean_std(values: list[float]) -> str:
    if not values:
        return "-"
    a = 100 * np.asarray(values, dtype=float)
    return f"{a.mean():.2f}" if len(a) == 1 else f"{a.mean():.2f} ± {a.std(ddof=1):.2f}"


def summarise(results: dict[str, list[dict]]) -> list[dict[str, Any]]:
    """One row per method: mean +- std over seeds of the pooled driver metrics and extreme F1."""
    rows = []
    for name, runs in results.items():
        label = "Naive" if name == "naive" else METHODS[name].label
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
    ap.add_argument("--methods", nargs="+", default=["all"], help=f"all or any of: {' '.join(METHODS)}")
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
    names = list(METHODS) if args.methods == ["all"] else args.methods
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    names = sorted(names, key=lambda n: not n.startswith("ide_"))  # IDE first: SimpleNet uses it
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(args.root_synthetic)
    base = ["--root_synthetic", str(root)]
    base += ["--config", args.config] if args.config else _argv(data_options(root))
    base += extra

    def log(msg: str) -> None:
        print(msg, flush=True)
        with open(out / "table.log", "a") as fh:
            fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}\n")

    seeds = range(args.first_seed, args.first_seed + args.seeds)
    log(f"[table] methods {' '.join(names)}; seeds {' '.join(map(str, seeds))}; options {' '.join(base)}")
    results: dict[str, list[dict]] = {"naive": [naive_rows(base)]}
    for name in names:
        results[name] = [run_one(name, seed, base, out, args.epochs, log) for seed in seeds]
    order = ["naive", *[n for n in METHODS if n in names]]
    md = write_table(summarise({n: results[n] for n in order}), out)
    print(md)
    log(f"[table] wrote {out / 'table.md'} and {out / 'table.csv'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
