"""IDE against Naive and ARNet on a benchmark in the paper's regime, whole grid, at GPU scale.

The prepared device check of the paper-size study (docs/results: "Paper-size events"):
our generator's ``paper-exp1`` preset makes a 100 x 100 x 1040-week benchmark on the machine
(large files cannot be carried to a lent GPU), then IDE (the 30-minute recipe, whole
100 x 100 grid instead of 16 x 16 crops, one start instead of the best of three) and ARNet
train and test on the splits of the
CPU study, and one table prints driver F1 of IDE, Naive and ARNet with wall times.

    python -m scripts.paper_regime_gpu --out /tmp/paper_gpu            # GPU: about 5 minutes
    python -m scripts.paper_regime_gpu --out /tmp/paper_gpu --dry      # CPU: a tiny cube, checks the plumbing

Every command runs the entry scripts a user runs, and is printed before it runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (grid, weeks, splits, epochs, steps per epoch): the GPU run and the CPU plumbing check
FULL = {"grid": 100, "weeks": 1040, "train": (1, 416), "val": (729, 884), "test": (885, 1040),
        "epochs": 24, "steps": 60, "batch": 8}
DRY = {"grid": 24, "weeks": 312, "train": (1, 156), "val": (157, 234), "test": (235, 312),
       "epochs": 1, "steps": 2, "batch": 2}


def _run(cmd: list[str], log: list[dict]) -> None:
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    start = time.time()
    subprocess.run(cmd, cwd=ROOT, check=True)
    log.append({"command": shlex.join(cmd), "seconds": round(time.time() - start, 1)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the benchmark and runs (must not exist)")
    parser.add_argument("--seed", type=int, default=11, help="data seed of the generated benchmark")
    parser.add_argument("--dry", action="store_true", help="a tiny cube and two steps per run (CPU check)")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"error: --out {args.out} exists; give a new folder (nothing is overwritten)", file=sys.stderr)
        return 2
    s = DRY if args.dry else FULL
    data = args.out / f"exp1_s{args.seed}"
    log: list[dict] = []
    t = lambda key: [str(v) for v in s[key]]  # noqa: E731
    _run([sys.executable, "-m", "dataset.generate_synthetic", "--preset", "paper-exp1", "--seed", str(args.seed),
          "--height", str(s["grid"]), "--width", str(s["grid"]), "--n_weeks", str(s["weeks"]),
          "--times_train", str(s["train"][0]), str(s["val"][0] - 1), "--times_val", *t("val"),
          "--times_test", *t("test"), "--out", str(data)], log)
    common = ["--root_synthetic", str(data), "--times_train", *t("train"), "--times_val", *t("val"),
              "--times_test", *t("test"), "--x_max", str(s["grid"]), "--y_max", str(s["grid"]),
              "--dir_log", str(args.out / "runs")]
    budget = ["--n_epochs", str(s["epochs"]), "--max_train_batches", str(s["steps"]), "--batch_size", str(s["batch"])]
    runs = {
        # the recipe, whole grid instead of 16 x 16 crops, one start (model seed 0) instead of the best
        # of three, so that the check fits its 5 minutes; the gate's input trees as in the recipe
        "ide": ["--config", "configs/recipe_30min.yaml", "--train_crop", "0", "--restarts", "1", "--restart_keep", "1"],
        "arnet": ["--method", "arnet"],
    }
    for name, opts in runs.items():
        _run([sys.executable, "train_synthetic.py", *opts, *common, *budget, "--name", name], log)
        _run([sys.executable, "test_synthetic.py", *opts, *common, "--name", name, "--split", "test"], log)

    rows = {}
    for name in runs:
        m = json.loads((args.out / "runs" / name / "metrics_test.json").read_text())
        rows[name] = 100 * m["drivers"]["pooled"]["f1"]
        rows.setdefault("naive", 100 * m.get("naive", {}).get("pooled", {}).get("f1", float("nan")))
    print("\n" + "=" * 60)
    print(f"paper regime, {s['grid']} x {s['grid']} x {s['weeks']} weeks, data seed {args.seed}, whole grid")
    for name in ("ide", "naive", "arnet"):
        print(f"  test driver F1 {name:6s} {rows[name]:6.2f} %")
    for entry in log:
        print(f"  {entry['seconds']:7.1f} s  {entry['command'][:90]}")
    result = {"seed": args.seed, "dry": args.dry, "settings": {k: list(v) if isinstance(v, tuple) else v
                                                               for k, v in s.items()},
              "test_driver_f1": rows, "steps": log}
    (args.out / "paper_regime.json").write_text(json.dumps(result, indent=2))
    if os.environ.get("OUT"):
        (Path(os.environ["OUT"]) / "paper_regime.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
