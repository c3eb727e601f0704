"""Training throughput (samples/s) and peak memory of one full epoch, data loading included, per encoder.

    python scripts/benchmark_training.py --encoder CNN_3D Swin_3D Mamba --device cuda \\
        --root_synthetic data/synthetic/small --batch_size 4 [--<config option> VALUE ...]
    python scripts/benchmark_training.py --encoder Swin_3D --preset tiny     # generates data in a temp dir
    python scripts/benchmark_training.py --preset small --device_data on --sync_every 50   # the fast path's
        # data and host-read options (docs/guides/gpu-training.md); --amp, --compile, --channels_last likewise

Prints one JSON line per encoder. Several encoders run one subprocess each, so the
CPU peak (process max RSS) of one does not leak into the next; on CUDA the peak is
``torch.cuda.max_memory_allocated``. ``--warmup_batches`` steps (not timed) come first
(allocator, cuDNN autotuning); the timed epoch is ``engine.train_one_epoch`` itself.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _own_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False)
    ap.add_argument("--encoder", nargs="+", default=["Swin_3D"], choices=["CNN_3D", "Swin_3D", "Mamba"])
    ap.add_argument("--preset", help="generate this generator preset (tiny, small, ...) into a temp dir")
    ap.add_argument("--warmup_batches", type=int, default=2, help="untimed steps before the epoch")
    return ap.parse_known_args(argv)


def _preset_options(preset: str, out: Path) -> list[str]:
    from dataset.generate_synthetic import generate, resolve

    params = resolve(preset)
    root = generate(params, out / preset)
    opts = ["--root_synthetic", str(root), "--x_max", str(params.width), "--y_max", str(params.height)]
    for split in ("train", "val", "test"):
        t0, t1 = getattr(params, f"times_{split}")
        opts += [f"--times_{split}", str(t0), str(t1)]
    return opts


def bench(encoder: str, rest: list[str], warmup: int) -> dict:
    import torch

    from config import parse_config
    from dataset.device_cube import plan
    from dataset.synthetic import SyntheticDataset
    from models.build import build_model
    from utils import engine
    from utils.runtime import prepare_model, seed_everything, setup_runtime

    cfg = parse_config([*rest, "--encoder", encoder], fixed={"dataset": "synthetic"})
    rt = setup_runtime(cfg)
    seed_everything(cfg.seed)
    train_set = SyntheticDataset.from_config(cfg, "train")
    model = build_model(cfg).to(rt.device)
    prepare_model(cfg, model)
    optimizer = engine.build_optimizer(cfg, model)
    on_device, data_path = plan(cfg, rt.device, train_set)
    loader, sampler = engine.make_train_loader(cfg, rt, train_set, on_device)
    cuda = rt.device.type == "cuda"
    if warmup > 0:
        warm_cfg = parse_config([*rest, "--encoder", encoder, "--max_train_batches", str(warmup)],
                                fixed={"dataset": "synthetic"})
        engine.train_one_epoch(warm_cfg, rt, model, loader, optimizer, 0)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    sampler.set_epoch(1)
    t0 = time.perf_counter()
    stats = engine.train_one_epoch(cfg, rt, model, loader, optimizer, 1)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if cuda:
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    return {
        "encoder": encoder,
        "device": str(rt.device),
        "hardware": torch.cuda.get_device_name(rt.device) if cuda else platform.machine(),
        "amp": rt.amp_name,
        "data_path": data_path,
        "sync_every": cfg.sync_every,
        "fused_adam": bool(optimizer is not None and optimizer.defaults.get("fused")),
        "compile": cfg.compile,
        "channels_last": cfg.channels_last,
        "batch_size": cfg.batch_size,
        "crop": [train_set.height, train_set.width],
        "delta_t": cfg.delta_t,
        "n_vars": len(cfg.variables),
        "samples": int(stats["samples"]),
        "seconds": round(seconds, 3),
        "samples_per_s": round(stats["samples"] / seconds, 3),
        "peak_mem_mb": round(peak / 2**20, 1),
        "peak_mem_kind": "cuda_max_allocated" if cuda else "process_max_rss",
        "train_loss": round(float(stats["loss"]), 5),
        "n_params": sum(p.numel() for p in model.parameters()),
        "n_workers": cfg.n_workers,
        "torch": str(torch.__version__),
    }


def main(argv: list[str] | None = None) -> int:
    args, rest = _own_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory() as tmp:
        if args.preset:
            rest = [*_preset_options(args.preset, Path(tmp)), *rest]
        if len(args.encoder) > 1:  # one clean process per encoder (separate CPU peaks)
            rc = 0
            for enc in args.encoder:
                cmd = [sys.executable, __file__, "--encoder", enc]
                cmd += ["--warmup_batches", str(args.warmup_batches), *rest]
                rc = max(rc, subprocess.run(cmd).returncode)
            return rc
        print(json.dumps(bench(args.encoder[0], rest, args.warmup_batches)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
