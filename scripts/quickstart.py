"""The quick start: generate the `small` benchmark once, train IDE, test it, show the result.

Runs the same entry scripts a user would run by hand (and prints each command), so
the quick start is also a worked example. Uses the GPU automatically when there is one.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(cmd: list[str]) -> None:
    print(f"\n$ {shlex.join(cmd)}", flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)


def stale_preset(data: Path, preset: str) -> str | None:
    """A benchmark our generator made from ``preset`` with settings the preset no longer has."""
    import xarray as xr

    from dataset.generate_synthetic import mismatch, resolve

    with xr.open_dataset(data / f"datacube_{data.name}.nc") as ds:
        ours = ds.attrs.get("generator") == "dataset.generate_synthetic" and ds.attrs.get("preset") == preset
        seed = int(ds.attrs.get("seed", 0))
    return mismatch(data, resolve(preset, seed)) if ours else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/quickstart.yaml", help="training preset")
    parser.add_argument("--data", default="data/synthetic/small", help="benchmark folder (generated if absent)")
    parser.add_argument("--preset", default="small", help="generator preset used when the folder is absent")
    parser.add_argument("--dir_log", default="log", help="parent folder of the run")
    parser.add_argument("--name", default=None, help="run name (default: quickstart_<date-time>)")
    parser.epilog = "Any other --<option> VALUE pairs (see train_synthetic.py --help) go to training and testing."
    args, extra = parser.parse_known_args(argv)

    start = time.time()
    data = ROOT / args.data
    if not (data / f"datacube_{data.name}.nc").is_file():
        run([sys.executable, "-m", "dataset.generate_synthetic", "--preset", args.preset, "--out", str(data)])
    else:
        stale = stale_preset(data, args.preset)
        if stale:
            print(f"error: {stale}. Delete the folder to regenerate it, or pass --data DIR.", file=sys.stderr)
            return 2
        print(f"[quickstart] using the existing benchmark {data}")

    name = args.name or time.strftime("quickstart_%Y%m%d-%H%M%S")
    common = ["--config", args.config, "--root_synthetic", str(data), "--dir_log", args.dir_log, "--name", name]
    run([sys.executable, "train_synthetic.py", *common, *extra])
    run([sys.executable, "test_synthetic.py", *common, *extra, "--split", "test", "--save_predictions", "true"])
    run_dir = ROOT / args.dir_log / name
    run([sys.executable, "-m", "vis.driver_maps", "--run", str(run_dir), "--split", "test",
         "--out", str(run_dir / "figures")])

    metrics = json.loads((run_dir / "metrics_test.json").read_text())
    pooled, ext = metrics["drivers"]["pooled"], metrics["extremes"]
    naive = metrics.get("naive", {}).get("pooled", {})
    minutes = (time.time() - start) / 60
    print("\n" + "=" * 72)
    print(f"IDE on '{data.name}', test split ({minutes:.1f} min in all)")
    def row(label: str, m: dict) -> str:
        return f"  {label:8s} F1 {100 * m['f1']:6.2f} %   IoU {100 * m['iou']:6.2f} %   OA {100 * m['oa']:6.2f} %"

    print(row("drivers", pooled))
    if naive:
        print(row("Naive", naive))
    print(f"  extremes F1 {100 * ext['f1']:6.2f} %   precision {100 * ext['precision']:6.2f} %   "
          f"recall {100 * ext['recall']:6.2f} %")
    print(f"run folder: {run_dir}")
    print("  checkpoints *.pth, metrics_test.json, drivers_test.nc, figures/*.png, train.log")
    print(f"  TensorBoard: tensorboard --logdir {run_dir}")
    print("=" * 72)
    return 0


if __name__ == "__main__":
    sys.exit(main())
