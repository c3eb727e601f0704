"""Throughput and memory of the ERA5-Land loader on a full-size EUR-11 tree (412 x 424, 9 variables).

    python scripts/benchmark_loader.py                      # builds /tmp/idee_bench_eur11_smooth once (~3 GB)
    python scripts/benchmark_loader.py --tree DIR --workers 2 --samples 40
    python scripts/benchmark_loader.py --crop 200 200        # the default config crop
    python scripts/benchmark_loader.py --compare_store       # tree (memory maps) vs zarr store, alternated

``--compare_store`` also writes the zarr store of the tree once (``python -m dataset.to_zarr``,
``--store``; default ``<tree>/era5_land_eur11.zarr`` with ``--store_chunk`` rows x cols) and then
measures shuffled in-process samples/s from the tree and from the store, whole grid and
``--compare_crop``, each measurement in a fresh process (its own peak resident memory),
the two sources alternated ``--repeats`` times; it prints a table with the sizes on disk.

Reports samples/s per worker for in-order access (evaluation: neighbouring windows share
T-1 weeks, which the loader's week cache exploits) and shuffled access (training), the CPU
time per sample, and the peak resident memory of the main process and of the workers.
The tree holds only the ``mean`` and ``std`` statistics (disk); the loader reads only those.
Its fields are the sample tree's smooth, autocorrelated ones (since 2026-12-06; the folder name
changed with them from ``/tmp/idee_bench_eur11``, whose per-pixel noise no codec compresses).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Sampler, default_collate  # noqa: E402

from config import ERA5_LAND_VARIABLES, load_config  # noqa: E402
from dataset.era5_land import ERA5LandDataset  # noqa: E402
from dataset.sample_tree import ERA5_LAND_GRIDS, make_tree  # noqa: E402
from utils.batch_transport import pooled_collate  # noqa: E402
from utils.cpu_memory import retain_freed_memory  # noqa: E402

YEARS = [2016, 2017]


class _Fixed(Sampler):
    def __init__(self, order: list[int]) -> None:
        self.order = order

    def __iter__(self):
        return iter(self.order)

    def __len__(self) -> int:
        return len(self.order)


def _peak_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def run(ds: ERA5LandDataset, order: list[int], workers: int, collate: str = "pooled") -> dict[str, float]:
    """Iterate ``order`` once (batch 1). Rates over all samples and in steady state (after the
    first 2 * max(workers, 1) samples: worker start-up and cold caches excluded).

    In-process the sample is used as it is; from workers it travels as training's loaders
    send it (``pooled_collate``), or with ``collate='default'`` through PyTorch's default
    collate (a fresh shared-memory file per batch)."""
    fn = (lambda b: b[0]) if workers == 0 else pooled_collate if collate == "pooled" else default_collate
    loader = DataLoader(ds, batch_size=1, sampler=_Fixed(order), num_workers=workers, collate_fn=fn)
    cpu0, t0 = time.process_time(), time.perf_counter()
    stamps = []
    for sample in loader:
        assert sample["x"].dtype == torch.float32
        stamps.append(time.perf_counter())
    n, k = len(stamps), min(2 * max(workers, 1), len(stamps) - 2)
    per_worker = max(workers, 1)
    out = {
        "samples": n,
        "wall_s": round(stamps[-1] - t0, 2),
        "samples_per_s_per_worker": round(n / (stamps[-1] - t0) / per_worker, 2),
        "steady_samples_per_s_per_worker": round((n - 1 - k) / (stamps[-1] - stamps[k]) / per_worker, 2),
    }
    if workers == 0:
        out["cpu_ms_per_sample"] = round((time.process_time() - cpu0) / n * 1e3, 1)
    return out


SOURCES = ("tree", "store")
SOURCE_NAMES = {"tree": "tree (netCDF, memory maps)", "store": "zarr store"}


def _disk_mb(path: Path) -> float:
    """Bytes on disk (allocated blocks) of a file tree, in MiB."""
    return sum(f.stat().st_blocks * 512 for f in path.rglob("*") if f.is_file()) / 2**20


def _ensure_tree(tree: Path, seed: int, size: tuple[int, int] | None = None) -> None:
    h, w = size or ERA5_LAND_GRIDS["EUR-11"]
    if (tree / "ERA5-Land" / "EUR-11" / "EUR-11_statistic_train.json").is_file():
        return
    t = time.perf_counter()
    print(f"[benchmark] writing a full-size EUR-11 tree ({h} x {w}, years {YEARS}) to {tree} ...", flush=True)
    make_tree("era5_land", tree, YEARS, region="EUR-11", shape=(h, w), seed=seed, statistics=("mean", "std"),
              verbose=True, overwrite=True)  # its own scratch tree, incomplete when a write was cut short
    print(f"[benchmark] tree written in {time.perf_counter() - t:.0f} s", flush=True)


def _dataset(tree: Path, crop: tuple[int, int], delta_t: int, store: Path | None) -> ERA5LandDataset:
    ch, cw = crop
    over = {
        "dataset": "ERA5_Land",
        "region": "EUR-11",
        "root_ERA5_Land": str(tree / "ERA5-Land"),
        "root_NOAA": str(tree / "NOAA_CORDEX"),
        "years_train": [str(YEARS[-1])],
        "variables": ERA5_LAND_VARIABLES,
        "in_channels_dynamic": len(ERA5_LAND_VARIABLES),
        "delta_t": delta_t,
        "x_min": 0,
        "x_max": cw,
        "y_min": 0,
        "y_max": ch,
        "is_aug": True,
    }
    if store is not None:
        over["store"] = str(store)
    return ERA5LandDataset.from_config(load_config(overrides=over), "train")


def measure_one(a: argparse.Namespace) -> int:
    """One measurement in this process (``--measure tree|store``): prints one JSON line."""
    retain_freed_memory()
    crop = tuple(a.crop) if a.crop else ERA5_LAND_GRIDS["EUR-11"]
    ds = _dataset(a.tree, crop, a.delta_t, a.store if a.measure == "store" else None)
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(len(ds))[: min(a.samples, len(ds))].tolist()
    res = run(ds, order, 0)
    res["peak_rss_mb"] = round(_peak_mb(resource.RUSAGE_SELF), 1)
    print(json.dumps(res), flush=True)
    return 0


def compare_store(a: argparse.Namespace) -> int:
    """Tree (memory maps) vs store, alternated, each measurement in a fresh process; prints a table."""
    import os
    import subprocess

    from dataset.to_zarr import convert_reanalysis

    _ensure_tree(a.tree, a.seed, tuple(a.size) if a.size else None)
    store = a.store or a.tree / "era5_land_eur11.zarr"
    if not (store / "zarr.json").is_file():
        t = time.perf_counter()
        print(f"[benchmark] writing the store {store} (chunks 1 week x {a.store_chunk[0]} x {a.store_chunk[1]}) ...",
              flush=True)
        cfg = load_config(overrides={"region": "EUR-11", "root_ERA5_Land": str(a.tree / "ERA5-Land"),
                                     "root_NOAA": str(a.tree / "NOAA_CORDEX")})
        convert_reanalysis("era5_land", cfg, store, chunk=tuple(a.store_chunk), verbose=True)
        print(f"[benchmark] store written in {time.perf_counter() - t:.0f} s", flush=True)
    tree_mb = _disk_mb(a.tree / "ERA5-Land") + _disk_mb(a.tree / "NOAA_CORDEX")
    store_mb = _disk_mb(store)
    clim_mb = _disk_mb(store / "climatology")
    inputs_tree = sum(_disk_mb(d) for d in (a.tree / "ERA5-Land" / "EUR-11").iterdir() if d.is_dir())
    inputs_store = sum(_disk_mb(store / v) for v in ERA5_LAND_VARIABLES)
    grid = tuple(json.loads((store / "zarr.json").read_text())["attributes"]["grid"])
    crops = [grid, tuple(a.compare_crop)]
    rows: dict[tuple[tuple[int, int], str], list[dict]] = {}
    for r in range(a.repeats):
        for crop in crops:
            sources = ["tree", "store"] if r % 2 == 0 else ["store", "tree"]
            for src in sources:
                cmd = [sys.executable, __file__, "--measure", src, "--tree", str(a.tree), "--store", str(store),
                       "--crop", str(crop[0]), str(crop[1]), "--samples", str(a.samples), "--delta_t",
                       str(a.delta_t), "--seed", str(a.seed + r)]
                out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=os.environ.copy())
                res = json.loads(out.stdout.strip().splitlines()[-1])
                rows.setdefault((crop, src), []).append(res)
                print(f"[benchmark] repeat {r + 1} crop {crop[0]}x{crop[1]} {src:5s}: "
                      f"{res['samples_per_s_per_worker']} samples/s, peak RSS {res['peak_rss_mb']} MB", flush=True)
    load = os.getloadavg()
    print()
    print(f"shuffled in-process samples/s ({a.samples} samples per run, {a.repeats} runs per cell, sources "
          f"alternated; delta_t {a.delta_t}; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on "
          f"{os.cpu_count()} cores; torch threads {torch.get_num_threads()})")
    print(f"tree (ERA5-Land + NOAA, netCDF, memory-mapped): {tree_mb:.0f} MiB on disk; store {store.name}: "
          f"{store_mb:.0f} MiB on disk (climatology, uncompressed: {clim_mb:.0f} MiB); codec "
          f"{json.loads((store / 'zarr.json').read_text())['attributes'].get('codec')}; weekly inputs: tree "
          f"{inputs_tree:.0f} MiB, store {inputs_store:.0f} MiB ({inputs_tree / inputs_store:.2f} x smaller)")
    print()
    print("| crop | source | samples/s, each run | median | steady-state median | store / tree | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for crop in crops:
        med = {src: float(np.median([x["samples_per_s_per_worker"] for x in rows[(crop, src)]])) for src in SOURCES}
        for src in SOURCES:
            runs = rows[(crop, src)]
            rate = [x["samples_per_s_per_worker"] for x in runs]
            steady = float(np.median([x["steady_samples_per_s_per_worker"] for x in runs]))
            ratio = f"{med['store'] / med['tree']:.0%}" if src == "store" else ""
            print(f"| {crop[0]} x {crop[1]} | {SOURCE_NAMES[src]} | {' '.join(f'{v:.1f}' for v in rate)} | "
                  f"{med[src]:.1f} | {steady:.1f} | {ratio} | {max(x['peak_rss_mb'] for x in runs):.0f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--tree", type=Path, default=Path("/tmp/idee_bench_eur11_smooth"), help="tree parent (built if absent)"
    )
    p.add_argument(
        "--crop", nargs=2, type=int, metavar=("H", "W"), help="crop rows cols (default: whole grid)"
    )
    p.add_argument("--samples", type=int, default=30, help="samples per measurement")
    p.add_argument("--workers", type=int, nargs="+", default=[0], help="DataLoader worker counts to measure")
    p.add_argument("--delta_t", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--collate",
        default="pooled",
        choices=["pooled", "default"],
        help="with workers: 'pooled' reuses shared buffers as training does (utils/batch_transport.py); "
        "'default': PyTorch's default collate",
    )
    p.add_argument(
        "--malloc",
        default="retain",
        choices=["retain", "default"],
        help="'retain' reuses freed memory as CPU training does (utils/cpu_memory.py); 'default': glibc's policy",
    )
    p.add_argument("--compare_store", action="store_true", help="tree vs zarr store, alternated (table)")
    p.add_argument("--store", type=Path, help="the zarr store (default <tree>/era5_land_eur11.zarr)")
    p.add_argument("--store_chunk", nargs=2, type=int, default=[206, 212], metavar=("ROWS", "COLS"),
                   help="spatial chunk of a store written by --compare_store (default: half the grid)")
    p.add_argument("--compare_crop", nargs=2, type=int, default=[200, 200], metavar=("H", "W"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--size", nargs=2, type=int, metavar=("H", "W"),
                   help="grid of a tree --compare_store writes (default: the EUR-11 grid; small: a quick check)")
    p.add_argument("--measure", choices=["tree", "store"], help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.measure:
        return measure_one(a)
    if a.compare_store:
        return compare_store(a)
    retained = a.malloc == "retain" and retain_freed_memory()

    h, w = ERA5_LAND_GRIDS["EUR-11"]
    if not (a.tree / "ERA5-Land" / "EUR-11" / "EUR-11_statistic_train.json").is_file():
        t = time.perf_counter()
        print(
            f"[benchmark] writing a full-size EUR-11 tree ({h} x {w}, years {YEARS}) to {a.tree} ...",
            flush=True,
        )
        make_tree(
            "era5_land",
            a.tree,
            YEARS,
            region="EUR-11",
            full_grid=True,
            seed=a.seed,
            statistics=("mean", "std"),
            verbose=True,
            overwrite=True,  # its own scratch tree, incomplete when a write was cut short
        )
        print(f"[benchmark] tree written in {time.perf_counter() - t:.0f} s", flush=True)
    ch, cw = a.crop or (h, w)
    cfg = load_config(
        overrides={
            "dataset": "ERA5_Land",
            "region": "EUR-11",
            "root_ERA5_Land": str(a.tree / "ERA5-Land"),
            "root_NOAA": str(a.tree / "NOAA_CORDEX"),
            "years_train": [str(YEARS[-1])],
            "variables": ERA5_LAND_VARIABLES,
            "in_channels_dynamic": len(ERA5_LAND_VARIABLES),
            "delta_t": a.delta_t,
            "x_min": 0,
            "x_max": cw,
            "y_min": 0,
            "y_max": ch,
            "is_aug": True,
        }
    )
    ds = ERA5LandDataset.from_config(cfg, "train")
    rng = np.random.default_rng(a.seed)
    n = min(a.samples, len(ds))
    orders = {"in_order": list(range(n)), "shuffled": rng.permutation(len(ds))[:n].tolist()}
    report: dict[str, object] = {
        "dataset": repr(ds),
        "crop": [ch, cw],
        "torch_threads": torch.get_num_threads(),
        "malloc": "retain" if retained else "default",
        "collate": a.collate,
    }
    for workers in a.workers:
        for name, order in orders.items():
            report[f"{name}_workers{workers}"] = run(ds, order, workers, a.collate)
            print(
                f"[benchmark] {name:8s} workers={workers}: {report[f'{name}_workers{workers}']}", flush=True
            )
    report["peak_rss_main_mb"] = round(_peak_mb(resource.RUSAGE_SELF), 1)
    report["peak_rss_largest_worker_mb"] = round(_peak_mb(resource.RUSAGE_CHILDREN), 1)
    x = ds[0]["x"]
    report["sample_x_mb"] = round(x.numel() * 4 / 2**20, 1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
