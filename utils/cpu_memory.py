"""Keep freed CPU memory in the process so large tensors are not page-faulted in again every step.

glibc serves every allocation above 32 MB with a fresh ``mmap`` and returns it with
``munmap`` when the tensor is freed. A CPU training step of IDE allocates and frees
hundreds of such activations (e.g. Swin_3D's MLP hidden, 100 MB at batch 2, 64 px),
so each step zero-fills them page by page again: about 660 000 page faults and a
third of the step's time in the kernel. Switching ``mmap`` off and never trimming the
heap lets freed blocks be reused without faults (measured in docs/design/performance.md).
The price is memory: the process keeps its peak until it exits, and the heap first grows
past the working set until freed blocks coalesce into holes that fit (a loop of 64 MB
tensors settles at about 800 MB resident instead of 220 MB; the model benchmarks' peaks
stay within 5 %). GPU runs are not affected (their large buffers live on the device).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER = -1  # for M_TRIM_THRESHOLD: never give the heap top back (man mallopt)
OPT_OUT_ENV = "IDEE_CPU_MALLOC"  # set to "default" to keep glibc's own policy

_applied = False


def retain_freed_memory() -> bool:
    """Tell glibc malloc to reuse freed blocks (no mmap, no trim); True when applied.

    A no-op (False) off Linux/glibc, when ``IDEE_CPU_MALLOC=default`` is set, or when
    ``mallopt`` refuses; idempotent. Call it once before the first large tensor.
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux") or os.environ.get(OPT_OUT_ENV, "").lower() == "default":
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, _NEVER) == 1
    _applied = ok
    return ok
