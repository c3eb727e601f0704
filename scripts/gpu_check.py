"""The prepared GPU check of the fast path (docs/guides/gpu-training.md): every figure in one run of a few minutes.

    bash scripts/gpu_check.sh                 # one GPU, about 5 minutes; figures also in $OUT/gpu_check.json
    python -m scripts.gpu_check --dry         # CPU, tiny sizes: the same code paths in about a minute

Sections, in this order (each is skipped with its reason when the time budget ``--budget_s`` is spent):

1. steps: ms/step and samples/s of engine.train_one_epoch at paper size (batch 1, 200 x 200, T 8,
   6 variables) for Swin_3D and CNN_3D, the old path (fp32, DataLoader, a host read every step, Adam
   for-each) and each change alone and together, in alternating rounds; peak memory of each.
2. roofline: FLOPs of one step (torch.utils.flop_counter.FlopCounterMode) and op-level bytes (each
   aten op reading its inputs and writing its outputs once: no cache reuse, no fusion), the achieved
   TFLOP/s and GB/s against the chip's limits and which limit binds.
3. published: the published implementation's step time on the same GPU (../shared/reference-harness's
   ref_step.py on the copy that scripts/gpu_check_prepare.sh puts into wheels/).
4. f1: short training runs on ``small`` (configs/quickstart.yaml, equal steps), new path against old,
   two seeds each, run side by side; their val driver F1.
5. epoch: a generated 200 x 200 cube (the paper-exp1 preset, generated in the background while 1-4
   run) read, normalised, put on the device and trained for one epoch end to end, then validated;
   the old path's epoch from its first ``--old_epoch_steps`` steps.
6. batches: the new path's samples/s and peak memory at growing batches of training crops
   (``--batch_crop`` pixels, ``--batches``), on a 64 x 64 cube of 600 weeks generated in the
   background: which batch fills the GPU (the quality side of larger batches is measured on CPU,
   docs/guides/gpu-training.md).
7. compile: the new path with ``--compile`` (compilation time and step time), last since it is slow
   to start.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Chip limits: spec sheet (dense) and what these machines measured (.library/device/KINDS.md, 2026-11).
LIMITS = {
    "H200": {"bf16_tflops": 989.0, "bf16_tflops_measured": 790.0, "fp32_tflops": 67.0, "tf32_tflops": 495.0,
             "hbm_tbs": 4.8, "hbm_tbs_measured": 4.3},
    "H100": {"bf16_tflops": 989.0, "bf16_tflops_measured": 798.0, "fp32_tflops": 67.0, "tf32_tflops": 495.0,
             "hbm_tbs": 3.35, "hbm_tbs_measured": 3.0},
}

# Each change alone on top of the old path, then together ("new" = the defaults on CUDA).
# (en_attention: Swin_3D only; CNN_3D has no attention and is timed without that row)
OLD = {"amp": "none", "fused_adam": False, "sync_every": 1, "device_data": "off", "en_attention": "matmul"}
NEW = {"amp": "bf16", "fused_adam": True, "sync_every": 50, "device_data": "on", "en_attention": "auto"}
VARIANTS: dict[str, dict[str, Any]] = {
    "old fp32": OLD,
    "old + bf16": {**OLD, "amp": "bf16"},
    "old + fused attention": {**OLD, "en_attention": "fused"},
    "old + fused adam": {**OLD, "fused_adam": True},
    "old + sync 50": {**OLD, "sync_every": 50},
    "old + device data": {**OLD, "device_data": "on"},
    "new": NEW,
    "new + channels_last": {**NEW, "channels_last": True},
}


class Budget:
    def __init__(self, seconds: float) -> None:
        self.t0, self.seconds = time.perf_counter(), seconds

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.t0)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def chip_limits(device: torch.device) -> dict[str, float] | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in LIMITS.items() if k in name), None)


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------


def generate_cmd(out: Path, size: int, weeks: int, train: int, val: int, preset: str = "paper-exp1") -> list[str]:
    """The generator's command line for a cube of ``size`` x ``size`` pixels and ``weeks`` weeks."""
    return [sys.executable, "-m", "dataset.generate_synthetic", "--preset", preset, "--out", str(out),
            "--height", str(size), "--width", str(size), "--n_weeks", str(weeks),
            "--times_train", "1", str(train), "--times_val", str(train + 1), str(train + val),
            "--times_test", str(train + val + 1), str(weeks), "--overwrite"]  # its own scratch (a reused --work)


def cube_config(root: Path, size: int, weeks: int, train: int, val: int, device: str, **kw: Any) -> Any:
    from config import Config

    base = dict(root_synthetic=str(root), x_max=size, y_max=size, times_train=(1, train),
                times_val=(train + 1, train + val), times_test=(train + val + 1, weeks), device=device,
                batch_size=1, n_workers=0, max_eval_batches=0)
    base.update(kw)
    return Config(**base).validate()


# --------------------------------------------------------------------------------------
# 1. step times, alternated
# --------------------------------------------------------------------------------------


@dataclasses.dataclass
class Path_:
    name: str
    cfg: Any
    rt: Any
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    loader: Any
    peak_gb: float = float("nan")
    times: list[float] = dataclasses.field(default_factory=list)


def build_path(name: str, cfg: Any, dataset: Any) -> Path_:
    from dataset.device_cube import plan
    from models.build import build_model
    from utils import engine
    from utils.runtime import prepare_model, seed_everything, setup_runtime

    rt = setup_runtime(cfg)
    seed_everything(0)
    model = build_model(cfg).to(rt.device)
    prepare_model(cfg, model)
    optimizer = engine.build_optimizer(cfg, model)
    loader, _ = engine.make_train_loader(cfg, rt, dataset, plan(cfg, rt.device, dataset)[0])
    return Path_(name, cfg, rt, model, optimizer, loader)


def run_steps(p: Path_, steps: int) -> float:
    """Seconds per step of ``steps`` steps of engine.train_one_epoch (device finished before and after)."""
    from utils import engine

    cfg = dataclasses.replace(p.cfg, max_train_batches=steps)
    _sync()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # the engine's no-terminal progress lines
        engine.train_one_epoch(cfg, p.rt, p.model, p.loader, p.optimizer, 0)
    _sync()
    return (time.perf_counter() - t0) / steps


def timing_row(p: Path_) -> dict[str, Any]:
    """The figures of a timed path: the median of its rounds, its samples/s at its batch, peak memory."""
    ms = 1e3 * statistics.median(p.times)
    return {"ms_per_step": ms, "samples_per_s": 1e3 * p.cfg.batch_size / ms, "peak_gb": p.peak_gb,
            "rounds_ms": [round(1e3 * t, 2) for t in p.times], "amp": p.rt.amp_name}


def time_paths(paths: list[Path_], warmup: int, steps: int, rounds: int) -> None:
    """Warm-up each path (its peak memory measured there), then ``rounds`` rounds over all paths in turn."""
    for p in paths:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        run_steps(p, warmup)
        if torch.cuda.is_available():
            p.peak_gb = torch.cuda.max_memory_allocated() / 1e9
    for _ in range(rounds):
        for p in paths:
            p.times.append(run_steps(p, steps))


# --------------------------------------------------------------------------------------
# 2. FLOPs and op-level bytes of one step
# --------------------------------------------------------------------------------------


def one_step(p: Path_) -> Callable[[], None]:
    from utils.engine import loss_function
    from utils.runtime import to_device

    batch = to_device(next(iter(p.loader)), p.rt.device)
    loss_fn = loss_function(p.model)

    def step() -> None:
        with p.rt.autocast():
            out = p.model(batch["x"])
            loss, _ = loss_fn(out, batch)
        loss.backward()
        p.model.zero_grad(set_to_none=True)

    return step


def count_flops(step: Callable[[], None]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        step()
    return float(fc.get_total_flops())


def count_op_bytes(step: Callable[[], None]) -> float:
    """Bytes read and written by the aten ops of ``step`` if each read its inputs and wrote its outputs
    once (views are free; a broadcast input counts its storage): the traffic of unfused kernels."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    def nbytes(t: torch.Tensor) -> int:
        try:
            stored = t.untyped_storage().nbytes()
        except (RuntimeError, NotImplementedError):
            stored = t.numel() * t.element_size()
        return min(t.numel() * t.element_size(), stored)

    class OpBytes(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            out = func(*args, **(kwargs or {}))
            if not getattr(func, "is_view", False):
                leaves = tree_flatten((args, kwargs or {}))[0] + tree_flatten(out)[0]
                OpBytes.total += sum(nbytes(t) for t in leaves if isinstance(t, torch.Tensor))
            return out

    with OpBytes():
        step()
    return float(OpBytes.total)


def count_host_syncs(step: Callable[[], None]) -> int | None:
    """Synchronising CUDA calls in ``step`` (``torch.cuda.set_sync_debug_mode``); None off CUDA."""
    import warnings

    if not torch.cuda.is_available():
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return sum("synchroniz" in str(w.message) for w in caught)


def roofline(flops: float, nbytes: float, seconds: float, limits: dict[str, float] | None, bf16: bool) -> dict:
    out = {"tflop_per_step": flops / 1e12, "gb_per_step": nbytes / 1e9,
           "tflops_achieved": flops / seconds / 1e12, "gbs_achieved": nbytes / seconds / 1e9}
    if limits:
        peak = limits["bf16_tflops_measured"] if bf16 else limits["tf32_tflops"]
        t_compute, t_memory = flops / (peak * 1e12), nbytes / (limits["hbm_tbs_measured"] * 1e12)
        out.update(
            compute_limit_tflops=peak, memory_limit_tbs=limits["hbm_tbs_measured"],
            compute_share=out["tflops_achieved"] / peak,
            memory_share=out["gbs_achieved"] / 1e3 / limits["hbm_tbs_measured"],
            binds="memory" if t_memory > t_compute else "compute",
            roofline_ms=1e3 * max(t_compute, t_memory),
        )
    return out


# --------------------------------------------------------------------------------------
# 3. the published implementation
# --------------------------------------------------------------------------------------


def published_step(ref: Path, harness: Path, shim: Path | None, encoder: str, size: int, steps: int,
                   device: str, timeout: float) -> dict:
    """ms/step of ref_step.py (one step of the published code, its defaults) on ``device``."""
    env = dict(os.environ, IDEE_REF=str(ref), DEVICE=device)
    paths = [str(ref)] + ([str(shim)] if shim else [])
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, str(harness / "ref_step.py"), encoder, str(size), "1", str(steps)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=str(ref))
    m = re.search(r"([\d.]+) ms/step", res.stdout)
    if res.returncode != 0 or not m:
        raise RuntimeError(f"ref_step.py exit {res.returncode}: {(res.stderr or res.stdout).strip()[-400:]}")
    return {"ms_per_step": float(m.group(1)), "line": res.stdout.strip().splitlines()[-1]}


# --------------------------------------------------------------------------------------
# 4. val driver F1 on small, new path against old
# --------------------------------------------------------------------------------------


def f1_runs(root: Path, log: Path, device: str, seeds: list[int], extra: list[str], timeout: float) -> dict:
    """Train configs/quickstart.yaml on ``root`` with the old and the new path (same steps), side by side."""
    procs = {}
    for path, opts in (("old", OLD), ("new", NEW)):
        flags = [x for k, v in opts.items() for x in (f"--{k}", str(v).lower() if isinstance(v, bool) else str(v))]
        for seed in seeds:
            name = f"{path}_s{seed}"
            cmd = [sys.executable, "train_synthetic.py", "--config", "configs/quickstart.yaml",
                   "--root_synthetic", str(root), "--dir_log", str(log), "--name", name, "--device", device,
                   "--seed", str(seed), *flags, *extra]
            procs[name] = (subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                            text=True), time.perf_counter())
    out: dict[str, Any] = {}
    for name, (proc, t0) in procs.items():
        try:
            text, _ = proc.communicate(timeout=max(1.0, timeout - (time.perf_counter() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out[name] = {"error": "timed out"}
            continue
        if proc.returncode != 0:
            out[name] = {"error": text.strip()[-400:]}
            continue
        last = torch.load(log / name / "last.pth", map_location="cpu", weights_only=True)
        out[name] = {
            "val_driver_f1_last": last["metrics_validation"].get("drivers/pooled/f1"),
            "val_driver_f1_best": last["best"].get("driver_F1", {}).get("value"),
            "epochs": int(last["epoch"]) + 1,
            "wall_s": round(time.perf_counter() - t0, 1),
        }
    return out


# --------------------------------------------------------------------------------------
# 5. an epoch end to end
# --------------------------------------------------------------------------------------


def epoch_end_to_end(cfg: Any, old_steps: int, max_seconds: float | None = None,
                     ms_per_step: float | None = None) -> dict:
    """Read, normalise, put on the device, train one epoch and validate; an epoch that would not fit
    ``max_seconds`` at ``ms_per_step`` is cut to the steps that fit (``train_steps`` says how many)."""
    from dataset import device_cube
    from dataset.families import dataset_family
    from dataset.synthetic import SyntheticDataset
    from models.build import build_model
    from utils import engine
    from utils.runtime import prepare_model, seed_everything, setup_runtime

    res: dict[str, Any] = {}
    t0 = time.perf_counter()
    train = SyntheticDataset.from_config(cfg, "train")
    val = SyntheticDataset.from_config(cfg, "val")
    res["read_normalise_s"] = time.perf_counter() - t0
    res["encoder"] = cfg.encoder
    res["train_samples"], res["val_samples"] = len(train), len(val)
    rt = setup_runtime(cfg)
    t1 = time.perf_counter()
    use, why = device_cube.plan(cfg, rt.device, train)
    if use:
        device_cube.device_cube(train, rt.device)
        device_cube.device_cube(val, rt.device)
    _sync()
    res["to_device_s"], res["data_path"] = time.perf_counter() - t1, why
    seed_everything(0)
    model = build_model(cfg).to(rt.device)
    prepare_model(cfg, model)
    optimizer = engine.build_optimizer(cfg, model)
    loader, _ = engine.make_train_loader(cfg, rt, train, use)
    steps = len(loader)
    if max_seconds is not None and ms_per_step:
        steps = max(1, min(steps, int(max_seconds / (1.3 * ms_per_step / 1e3))))
    t2 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        stats = engine.train_one_epoch(dataclasses.replace(cfg, max_train_batches=steps), rt, model, loader,
                                       optimizer, 0)
    _sync()
    res["train_epoch_s"] = time.perf_counter() - t2
    res["train_steps"], res["epoch_steps"] = steps, len(loader)
    res["train_loss"] = stats["loss"]
    family = dataset_family("synthetic")
    t3 = time.perf_counter()
    engine.evaluate(cfg, model, val, family.val_collectors(cfg, val, drivers=True), runtime=rt)
    _sync()
    res["val_s"] = time.perf_counter() - t3
    res["end_to_end_s"] = time.perf_counter() - t0
    res["samples_per_s"] = steps * cfg.batch_size / res["train_epoch_s"]
    res["train_epoch_s_full"] = res["train_epoch_s"] * len(loader) / steps  # = train_epoch_s when not cut
    if old_steps > 0:  # the old path: its first steps, the epoch estimated from them
        old_cfg = dataclasses.replace(cfg, **OLD)
        p = build_path("old fp32", old_cfg, train)
        run_steps(p, 2)
        s = run_steps(p, min(old_steps, len(train)))
        res["old_ms_per_step"] = 1e3 * s
        res["old_train_epoch_s_estimated"] = s * len(train)
    return res


# --------------------------------------------------------------------------------------
# 6. batches of crops
# --------------------------------------------------------------------------------------

#: the batch sweep's cube: 64 x 64 pixels, 600 weeks (553 training samples, enough for a batch of 512)
SWEEP_SIZE, SWEEP_WEEKS, SWEEP_TRAIN, SWEEP_VAL = 64, 600, 560, 20


def batch_sweep(base: Any, dataset: Any, batches: list[int], warmup: int, steps: int, rounds: int) -> dict:
    """ms/step, samples/s and peak memory of the new path (``base``: its config, crops set) at each batch
    of ``batches``; a batch larger than the split, or one that runs out of GPU memory, gets a reason
    instead, and the larger ones are not tried."""
    rows: dict[str, Any] = {}
    for b in batches:
        if b > len(dataset):
            rows[str(b)] = {"skipped": f"the split has {len(dataset)} samples"}
            break
        try:
            p = build_path(f"batch {b}", dataclasses.replace(base, batch_size=b), dataset)
            time_paths([p], warmup, steps, rounds)
            row = timing_row(p)
            rows[str(b)] = {**row, "pixels_per_s": row["samples_per_s"] * base.train_crop ** 2}
        except torch.cuda.OutOfMemoryError:
            rows[str(b)] = {"skipped": "out of GPU memory"}
            break
        finally:
            p = None  # the model and optimiser of this batch freed before the next
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    return rows


# --------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry", action="store_true", help="CPU, tiny sizes: test the code paths")
    ap.add_argument("--device", default=None, help="default: cuda (cpu with --dry)")
    ap.add_argument("--budget_s", type=float, default=285.0, help="stop starting sections after this")
    ap.add_argument("--encoders", nargs="+", default=["Swin_3D", "CNN_3D"])
    ap.add_argument("--size", type=int, default=200)
    ap.add_argument("--steps", type=int, default=5, help="steps per path per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--ref", default="wheels/idee_ref", help="published source tree (gpu_check_prepare.sh)")
    ap.add_argument("--harness", default="wheels/reference-harness", help="folder with ref_step.py")
    ap.add_argument("--shim", default=None, help="timm stand-in folder for the published code (CPU)")
    ap.add_argument("--epoch_weeks", type=int, default=2392, help="weeks of the epoch cube (paper: 2392)")
    ap.add_argument("--epoch_encoder", default="Swin_3D")
    ap.add_argument("--old_epoch_steps", type=int, default=40)
    ap.add_argument("--f1_seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--f1_extra", nargs=argparse.REMAINDER, default=[], help="options for the f1 runs (last)")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    ap.add_argument("--batches", type=int, nargs="+", default=[8, 32, 128, 512], help="batch sweep: batch sizes")
    ap.add_argument("--batch_crop", type=int, default=16, help="batch sweep: training crop (the recipes' 16)")
    ap.add_argument("--batches_reserve_s", type=float, default=45.0,
                    help="seconds of the budget the epoch section leaves to the batch sweep")
    ap.add_argument("--skip", nargs="*", default=[],
                    help="sections to skip: steps roofline published f1 epoch batches compile")
    a = ap.parse_args(argv)
    if a.dry:
        a.device = a.device or "cpu"
        a.size, a.steps, a.rounds, a.warmup = min(a.size, 16), min(a.steps, 1), min(a.rounds, 2), 1
        # 72 weeks: training weeks 1-53 cover every week of the year, so the climatology has each week
        a.epoch_weeks, a.old_epoch_steps = min(a.epoch_weeks, 72), min(a.old_epoch_steps, 2)
        a.f1_seeds = a.f1_seeds[:1]
        a.batches, a.batch_crop = [2, 4], min(a.batch_crop, 8)
    a.device = a.device or "cuda"
    return a


def _row(cells: list[Any], widths: list[int]) -> str:
    return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def main(argv: list[str] | None = None) -> dict:
    a = parse(argv)
    budget = Budget(a.budget_s)
    device = torch.device(a.device)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__, "dry": a.dry, "size": a.size, "batch": 1, "delta_t": 8, "n_vars": 6,
        "limits": chip_limits(device), "skipped": {},
    }
    print(f"gpu_check on {report['device']} (torch {torch.__version__}), budget {a.budget_s:.0f} s", flush=True)
    work_ctx = tempfile.TemporaryDirectory() if a.work is None else None
    work = Path(a.work or work_ctx.name)
    work.mkdir(parents=True, exist_ok=True)
    train_w, val_w = 24, 8  # the step timings' cube: 40 weeks, 17 training samples
    mini = work / "mini"
    subprocess.run(generate_cmd(mini, a.size, 40, train_w, val_w), check=True, cwd=str(ROOT),
                   stdout=subprocess.DEVNULL)
    # the epoch cube and small: generated on the CPU in the background while the GPU sections run
    ep_train = round(a.epoch_weeks * 1768 / 2392)
    ep_val = round(a.epoch_weeks * 312 / 2392)
    epoch_root = work / "epoch"
    gen_epoch = None
    if "epoch" not in a.skip:
        gen_epoch = subprocess.Popen(generate_cmd(epoch_root, a.size, a.epoch_weeks, ep_train, ep_val),
                                     cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    sweep_dims = (16, 60, 40, 10) if a.dry else (SWEEP_SIZE, SWEEP_WEEKS, SWEEP_TRAIN, SWEEP_VAL)
    sweep_root = work / "sweep"
    gen_sweep = None
    if "batches" not in a.skip:
        gen_sweep = subprocess.Popen(generate_cmd(sweep_root, *sweep_dims), cwd=str(ROOT),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    small = work / ("tiny" if a.dry else "small")
    gen_small = None
    if "f1" not in a.skip:
        gen_small = subprocess.Popen([sys.executable, "-m", "dataset.generate_synthetic", "--preset",
                                      "tiny" if a.dry else "small", "--out", str(small), "--overwrite"], cwd=str(ROOT),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def skip(section: str, why: str) -> None:
        report["skipped"][section] = why
        print(f"[{section}] skipped: {why}", flush=True)

    for section in a.skip:
        skip(section, "--skip")

    # 1-3: step times, roofline, published --------------------------------------------------
    report["steps"], report["roofline"], report["published"] = {}, {}, {}
    from dataset.synthetic import SyntheticDataset

    for enc in a.encoders:
        if "steps" in a.skip:
            break
        if budget.left() < 60:
            skip(f"steps {enc}", f"{budget.left():.0f} s of the budget left")
            continue
        base = cube_config(mini, a.size, 40, train_w, val_w, a.device, encoder=enc)
        ds = SyntheticDataset.from_config(base, "train")
        variants = {k: o for k, o in VARIANTS.items() if enc == "Swin_3D" or "attention" not in k}  # CNN: none
        paths = [build_path(name, dataclasses.replace(base, **opts), ds) for name, opts in variants.items()]
        time_paths(paths, a.warmup, a.steps, a.rounds)
        rows = {p.name: timing_row(p) for p in paths}
        old_ms = rows["old fp32"]["ms_per_step"]
        for r in rows.values():
            r["speedup_vs_old"] = old_ms / r["ms_per_step"]
        report["steps"][enc] = rows
        if "roofline" not in a.skip:
            for p in (paths[0], next(q for q in paths if q.name == "new")):
                step = one_step(p)
                step()  # warm (lazy init, cuDNN choice) outside the counters
                flops, nbytes = count_flops(step), count_op_bytes(step)
                report["roofline"][f"{enc} {p.name}"] = roofline(
                    flops, nbytes, rows[p.name]["ms_per_step"] / 1e3, report["limits"], p.rt.amp_name == "bf16")
                # forward, loss and backward only (the engine's reads and the optimiser step are not in it)
                report["roofline"][f"{enc} {p.name}"]["host_syncs_fwd_bwd"] = count_host_syncs(step)
        del paths
        if "published" not in a.skip:
            ref, harness = ROOT / a.ref, ROOT / a.harness
            if not (ref / "models" / "build.py").is_file() or not (harness / "ref_step.py").is_file():
                skip(f"published {enc}", f"no published source in {ref} or no ref_step.py in {harness}: "
                     "run scripts/gpu_check_prepare.sh first")
            else:
                try:
                    r = published_step(ref, harness, Path(a.shim).resolve() if a.shim else None, enc, a.size,
                                       a.steps * a.rounds, a.device, max(30.0, budget.left() - 30))
                    r["ours_new_over_published"] = r["ms_per_step"] / rows["new"]["ms_per_step"]
                    r["ours_old_over_published"] = r["ms_per_step"] / rows["old fp32"]["ms_per_step"]
                    report["published"][enc] = r
                except (RuntimeError, subprocess.TimeoutExpired) as err:
                    skip(f"published {enc}", str(err))
        if device.type == "cuda":
            torch.cuda.empty_cache()
        _print_steps(report, enc)

    # 4: F1 on small ------------------------------------------------------------------------
    if gen_small is not None:
        if gen_small.wait() != 0:
            skip("f1", f"generating small failed: {gen_small.stderr.read()[-300:]}")
        elif budget.left() < 100 and not a.dry:
            skip("f1", f"{budget.left():.0f} s of the budget left")
        else:
            extra = list(a.f1_extra)
            if a.dry:
                extra = ["--times_train", "1", "104", "--times_val", "105", "130", "--times_test", "131", "156",
                         "--x_max", "16", "--y_max", "16", "--n_epochs", "1", "--max_train_batches", "2",
                         "--max_eval_batches", "2", "--encoder", "CNN_3D", *extra]
            report["f1"] = f1_runs(small, work / "log", a.device, a.f1_seeds, extra, max(30.0, budget.left() - 60))
            _print_f1(report)

    # 5: an epoch end to end ----------------------------------------------------------------
    if gen_epoch is not None:
        try:
            rc = gen_epoch.wait(timeout=max(1.0, budget.left() - 40))
        except subprocess.TimeoutExpired:
            rc = None
        if rc is None:
            skip("epoch", "the epoch cube was not generated within the budget")
        elif rc != 0:
            skip("epoch", f"generating the epoch cube failed: {gen_epoch.stderr.read()[-300:]}")
        elif budget.left() < 40 and not a.dry:
            skip("epoch", f"{budget.left():.0f} s of the budget left")
        else:
            cfg = cube_config(epoch_root, a.size, a.epoch_weeks, ep_train, ep_val, a.device,
                              encoder=a.epoch_encoder, device_data="auto", sync_every=50, amp="auto")
            known = report["steps"].get(a.epoch_encoder, {}).get("new", {}).get("ms_per_step")
            reserve = 0.0 if gen_sweep is None else a.batches_reserve_s
            limit = None if a.dry else budget.left() - 45 - reserve  # reading, device copy and val: 45 s
            report["epoch"] = epoch_end_to_end(cfg, a.old_epoch_steps, limit, known)
            _print_epoch(report)

    # 6: batches of crops -----------------------------------------------------------------
    report["batches"] = {}
    if gen_sweep is not None:
        if gen_sweep.wait() != 0:
            skip("batches", f"generating the sweep cube failed: {gen_sweep.stderr.read()[-300:]}")
        else:
            for enc in a.encoders:
                if budget.left() < 20 and not a.dry:
                    skip(f"batches {enc}", f"{budget.left():.0f} s of the budget left")
                    continue
                base = cube_config(sweep_root, *sweep_dims, a.device, encoder=enc, train_crop=a.batch_crop, **NEW)
                ds = SyntheticDataset.from_config(base, "train")
                report["batches"][enc] = batch_sweep(base, ds, a.batches, a.warmup, a.steps, max(1, a.rounds - 1))
                _print_batches(report, enc, a.batch_crop)

    # 7: compile ----------------------------------------------------------------------------
    report["compile"] = {}
    for enc in a.encoders:
        if "compile" in a.skip:
            break
        if budget.left() < 60 and not a.dry:
            skip(f"compile {enc}", f"{budget.left():.0f} s of the budget left")
            continue
        base = cube_config(mini, a.size, 40, train_w, val_w, a.device, encoder=enc)
        ds = SyntheticDataset.from_config(base, "train")
        try:
            t0 = time.perf_counter()
            p = build_path("new + compile", dataclasses.replace(base, **NEW, compile=True), ds)
            run_steps(p, max(3, a.warmup))  # Swin_3D recompiles once at its 2nd step (its window-order cache)
            warm_s = time.perf_counter() - t0
            q = build_path("new", dataclasses.replace(base, **NEW), ds)
            run_steps(q, a.warmup)
            for _ in range(a.rounds):
                q.times.append(run_steps(q, a.steps))
                p.times.append(run_steps(p, a.steps))
            report["compile"][enc] = {"compile_and_warmup_s": warm_s, "ms_per_step": 1e3 * statistics.median(p.times),
                                      "new_ms_per_step": 1e3 * statistics.median(q.times)}
        except Exception as err:  # noqa: BLE001 - a compiler failure is a finding, not a crash of the check
            skip(f"compile {enc}", f"{type(err).__name__}: {str(err)[:300]}")
    for k, v in report["compile"].items():
        print(f"\n[compile] {k}: {v['ms_per_step']:.2f} ms/step compiled against {v['new_ms_per_step']:.2f} "
              f"(compile + warm-up {v['compile_and_warmup_s']:.0f} s)", flush=True)

    report["wall_s"] = budget.seconds - budget.left()
    print(f"\ngpu_check done in {report['wall_s']:.0f} s", flush=True)
    if os.environ.get("OUT"):
        Path(os.environ["OUT"], "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    for proc in (gen_epoch, gen_small, gen_sweep):
        if proc is not None and proc.poll() is None:
            proc.kill()
    if work_ctx is not None:
        work_ctx.cleanup()
    return report


def _print_steps(report: dict, enc: str) -> None:
    rows = report["steps"].get(enc, {})
    w = [22, 10, 10, 9, 9]
    print(f"\n[steps] {enc}: batch 1, {report['size']} x {report['size']}, T 8, 6 variables ({report['device']})")
    print(_row(["path", "ms/step", "samples/s", "x old", "peak GB"], w))
    for name, r in rows.items():
        print(_row([name, f"{r['ms_per_step']:.2f}", f"{r['samples_per_s']:.2f}", f"{r['speedup_vs_old']:.2f}",
                    _gb(r["peak_gb"])], w))
    for key, r in report["roofline"].items():
        if key.startswith(enc + " "):
            line = (f"  {key}: {r['tflop_per_step']:.3f} TFLOP and {r['gb_per_step']:.2f} GB (op-level) per step, "
                    f"{r['tflops_achieved']:.2f} TFLOP/s, {r['gbs_achieved']:.0f} GB/s")
            if r.get("host_syncs_fwd_bwd") is not None:
                line += f"; {r['host_syncs_fwd_bwd']} synchronising calls in forward + backward"
            if "binds" in r:
                line += (f"; {100 * r['compute_share']:.2f} % of {r['compute_limit_tflops']:.0f} TFLOP/s, "
                         f"{100 * r['memory_share']:.2f} % of {r['memory_limit_tbs']:.2f} TB/s; {r['binds']} binds "
                         f"(roofline {r['roofline_ms']:.2f} ms/step)")
            print(line)
    pub = report["published"].get(enc)
    if pub:
        print(f"  published: {pub['ms_per_step']:.1f} ms/step; ours new is {pub['ours_new_over_published']:.2f}x, "
              f"ours old {pub['ours_old_over_published']:.2f}x faster")
    sys.stdout.flush()


def _print_f1(report: dict) -> None:
    print("\n[f1] configs/quickstart.yaml on small, equal steps (val driver F1, last epoch / best)")
    for name, r in report["f1"].items():
        if "error" in r:
            print(f"  {name}: error {r['error']}")
        else:
            last, best = r["val_driver_f1_last"], r["val_driver_f1_best"]
            print(f"  {name}: {last if last is None else round(100 * last, 2)} / "
                  f"{best if best is None else round(100 * best, 2)} % after {r['epochs']} epochs, {r['wall_s']} s")
    sys.stdout.flush()


def _gb(x: float) -> str:
    """Peak memory for the tables: '-' where none was measured (NaN off CUDA)."""
    return "-" if x != x else f"{x:.2f}"


def _print_batches(report: dict, enc: str, crop: int) -> None:
    w = [8, 10, 11, 14, 9]
    print(f"\n[batches] {enc}, new path, training crops of {crop} x {crop} ({report['device']})")
    print(_row(["batch", "ms/step", "samples/s", "Mpixels/s", "peak GB"], w))
    for b, r in report["batches"][enc].items():
        if "skipped" in r:
            print(f"{b}: not run ({r['skipped']})")
            continue
        print(_row([b, f"{r['ms_per_step']:.2f}", f"{r['samples_per_s']:.1f}", f"{r['pixels_per_s'] / 1e6:.2f}",
                    _gb(r["peak_gb"])], w))
    sys.stdout.flush()


def _print_epoch(report: dict) -> None:
    r = report["epoch"]
    print(f"\n[epoch] {report['size']} x {report['size']} cube, {r['train_samples']} train / {r['val_samples']} val "
          f"samples, {r['encoder']} new path: read+normalise {r['read_normalise_s']:.1f} s, "
          f"to device {r['to_device_s']:.1f} s, "
          f"train {r['train_steps']}/{r['epoch_steps']} steps {r['train_epoch_s']:.1f} s "
          f"({r['samples_per_s']:.1f} samples/s; whole epoch {r['train_epoch_s_full']:.1f} s), val {r['val_s']:.1f} s, "
          f"end to end {r['end_to_end_s']:.1f} s [{r['data_path']}]")
    if "old_ms_per_step" in r:
        print(f"  old path: {r['old_ms_per_step']:.1f} ms/step, an epoch about "
              f"{r['old_train_epoch_s_estimated']:.0f} s (estimated from its first steps)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
