"""Wall time and peak RSS of the synthetic benchmark generator, one child process per preset.

    python scripts/benchmark_generator.py [--presets small paper-exp1] [--out DIR] [--keep]

Each preset runs as ``python -m dataset.generate_synthetic`` in its own child; the
peak resident set size is that child's ``ru_maxrss`` from ``os.wait4`` (so the
parent's memory is not counted). Output goes to ``--out`` (default: a temporary
folder) and is deleted afterwards unless ``--keep`` (paper-exp1 writes ~3.5 GB).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"small": (30.0, None), "paper-exp1": (300.0, 8.0)}  # seconds, GiB


def run_one(preset: str, out: Path, seed: int) -> tuple[float, float, int, float]:
    """Generate ``preset`` into ``out``; returns (wall s, peak RSS GiB, exit code, size GiB)."""
    cmd = [
        sys.executable,
        "-m",
        "dataset.generate_synthetic",
        "--preset",
        preset,
        "--out",
        str(out),
        "--seed",
        str(seed),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    size = sum(f.stat().st_size for f in out.glob("*") if f.is_file()) / 2**30 if out.is_dir() else 0.0
    return wall, usage.ru_maxrss / 2**20, proc.returncode, size  # ru_maxrss is KiB on Linux


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["small", "paper-exp1"])
    ap.add_argument("--out", default=None, help="parent folder of the outputs (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args(argv)

    parent = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="idee_genbench_"))
    parent.mkdir(parents=True, exist_ok=True)
    taken = [str(parent / p) for p in args.presets if (parent / p).exists()]
    if taken:
        print(f"error: option 'out': {', '.join(taken)} exists; give another --out (nothing is overwritten)",
              file=sys.stderr)
        return 2
    failed = False
    print(f"{'preset':<12} {'wall s':>8} {'peak RSS GiB':>13} {'files GiB':>10}  target")
    for preset in args.presets:
        out = parent / preset
        try:
            wall, rss, rc, size = run_one(preset, out, args.seed)
        finally:
            if not args.keep:
                shutil.rmtree(out, ignore_errors=True)
        t_max, m_max = TARGETS.get(preset, (None, None))
        ok = rc == 0 and (t_max is None or wall <= t_max) and (m_max is None or rss <= m_max)
        failed |= not ok
        target = f"<= {t_max:.0f} s" if t_max else "-"
        target += f", <= {m_max:.0f} GiB" if m_max else ""
        status = "ok" if ok else f"FAILED (exit {rc})" if rc else "over target"
        print(f"{preset:<12} {wall:8.1f} {rss:13.2f} {size:10.2f}  {target}  {status}", flush=True)
    if not args.out and not args.keep:
        shutil.rmtree(parent, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
