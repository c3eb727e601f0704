"""Time IDE training steps (forward + backward + Adam) on random data.

    python scripts/benchmark_model.py --encoder Swin_3D --batch 2 --size 64 --device cpu --steps 5

Prints one JSON object as its last line: encoder, ms_per_step (median after
warm-up), best_ms, peak_mem_mb (CPU: peak RSS of the process; CUDA:
torch.cuda.max_memory_allocated), plus the settings.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config import SYNTHETIC_VARIABLES, Config  # noqa: E402
from models import build_model  # noqa: E402
from utils.cpu_memory import retain_freed_memory  # noqa: E402
from utils.runtime import prepare_model, resolve_amp  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--encoder", default="Swin_3D", choices=["CNN_3D", "Swin_3D", "Mamba"])
    p.add_argument("--codebook", default="LFQ")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--vars", type=int, default=6)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--delta_t", type=int, default=8)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--mamba_impl", default="auto", choices=["auto", "torch", "kernel"])
    p.add_argument("--attention", default="auto", choices=["auto", "fused", "matmul"],
                   help="Swin_3D window attention (--en_attention of training)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave default)")
    p.add_argument("--amp", default="none", choices=["none", "auto", "bf16", "fp16"],
                   help="autocast dtype as --amp of training (auto: bf16 on CUDA, float32 on CPU; bf16 also on CPU)")
    p.add_argument("--fused_adam", action="store_true", help="Adam(fused=True) (CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (as --compile true)")
    p.add_argument("--channels_last", action="store_true", help="3-D conv weights NDHWC (as --channels_last true)")
    p.add_argument("--profile", action="store_true", help="print a torch.profiler table of one step")
    p.add_argument(
        "--malloc",
        default="retain",
        choices=["retain", "default"],
        help="CPU: 'retain' reuses freed memory as training does (utils/cpu_memory.py); 'default': glibc's policy",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    a = parse(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    retained = dev.type == "cpu" and a.malloc == "retain" and retain_freed_memory()
    names = SYNTHETIC_VARIABLES[: a.vars] if a.vars <= 6 else [f"v{i}" for i in range(a.vars)]
    cfg = Config(
        encoder=a.encoder,
        codebook=a.codebook,
        variables=names,
        in_channels_dynamic=a.vars,
        in_channels=a.channels,
        delta_t=a.delta_t,
        mamba_impl=a.mamba_impl,
        en_attention=a.attention,
    ).validate()
    torch.manual_seed(0)
    model = build_model(cfg).to(dev).train()
    prepare_model(argparse.Namespace(compile=a.compile, channels_last=a.channels_last), model)
    fused = {"fused": True} if a.fused_adam and dev.type == "cuda" else {}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=3e-3, **fused)
    amp = resolve_amp(a.amp, dev)
    n, s = a.batch, a.size
    x = torch.randn(n, a.vars, a.channels, a.delta_t, s, s, device=dev)
    batch = {
        "mask_extreme": (torch.rand(n, s, s, device=dev) < 0.1).float(),
        "mask_extreme_loss": (torch.rand(n, s, s, device=dev) < 0.3).float(),
    }

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast(dev.type, dtype=amp, enabled=amp is not None):
            out = model(x)
            loss, _ = model.compute_loss_tensors(out, batch)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(a.warmup):
        step()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        step()
        times.append((time.perf_counter() - t0) * 1e3)
    if a.profile:
        from torch.profiler import ProfilerActivity, profile

        acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
        with profile(activities=acts) as prof:
            step()
        key = "cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=25))
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    res = {
        "encoder": a.encoder,
        "codebook": a.codebook,
        "device": str(dev),
        "batch": n,
        "size": s,
        "vars": a.vars,
        "channels": a.channels,
        "delta_t": a.delta_t,
        "threads": torch.get_num_threads(),
        "amp": {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "none"),
        "fused_adam": bool(fused),
        "compile": a.compile,
        "channels_last": a.channels_last,
        "malloc": "retain" if retained else "default",
        "steps": a.steps,
        "ms_per_step": round(statistics.median(times), 1),
        "best_ms": round(min(times), 1),
        "peak_mem_mb": round(peak, 1),
    }
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
