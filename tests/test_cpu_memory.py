"""CPU malloc policy: applied on Linux/glibc, idempotent, and switched off by IDEE_CPU_MALLOC=default."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from utils import cpu_memory

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc policy is Linux only")


def _run(code: str, env_value: str | None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k != cpu_memory.OPT_OUT_ENV}
    if env_value is not None:
        env[cpu_memory.OPT_OUT_ENV] = env_value
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


CODE = """
    import torch
    from utils.cpu_memory import retain_freed_memory
    applied = retain_freed_memory()
    print(applied, retain_freed_memory())
    import resource
    for _ in range(16):  # warm-up: the heap grows until freed 64 MB blocks coalesce into reusable holes
        torch.empty(2**24).fill_(1.0)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        torch.empty(2**24).fill_(1.0)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_retain_freed_memory_reuses_large_blocks():
    lines = _run(CODE, None).splitlines()
    if lines[0].startswith("False"):
        pytest.skip("not glibc: mallopt unavailable")
    assert lines[0] == "True True"
    assert int(lines[1]) < 1000  # 5 more 64 MB tensors: no fresh pages (glibc's policy: 5 x 16 384)


def test_opt_out_keeps_glibc_policy():
    lines = _run(CODE, "default").splitlines()
    assert lines[0] == "False False"
    assert int(lines[1]) >= 5 * 16384  # glibc's policy: every 64 MB block comes fresh from mmap
