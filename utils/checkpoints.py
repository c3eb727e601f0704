"""Reading and writing checkpoint files: one loader that never runs code, one atomic writer.

Every ``.pth`` the project opens (``--checkpoint``, ``--resume``, released models, SimpleNet
backbones, the table script) goes through :func:`read_checkpoint`, which loads with
``torch.load(weights_only=True)``: tensors, containers and plain Python values only, so a
crafted file cannot execute anything. Our checkpoints and the published format (``epoch``,
``mean_loss_*`` floats, ``model_state_dict``, ``optimizer_state_dict``) need nothing more.
Each way a file can be unusable gets its own one-line :class:`~utils.errors.CheckpointError`.
"""

from __future__ import annotations

import errno
import io
import os
import pickle
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from utils.errors import CheckpointError, StorageError

__all__ = [
    "check_checkpoint_path",
    "read_checkpoint",
    "save_checkpoint",
    "write_atomic",
    "describe_mismatch",
    "write_error_message",
]

_ZIP_MAGIC = b"PK\x03\x04"


def check_checkpoint_path(path: str | Path, what: str = "checkpoint") -> Path:
    """``path`` as a Path if it names a file; a folder or a missing file is a :class:`CheckpointError`."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"{what} {path} is a folder, not a checkpoint file; pass a .pth file in it "
            f"(e.g. {path / 'best_driver_F1_model.pth'})"
        )
    if not path.is_file():
        raise CheckpointError(f"{what} {path} does not exist")
    return path


def read_checkpoint(path: str | Path, what: str = "checkpoint") -> Any:
    """Load ``path`` without executing code; ``what`` names where the path came from in errors."""
    path = check_checkpoint_path(path, what)
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"{what} {path} is empty (0 bytes): the copy or download did not finish")
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head.startswith(_ZIP_MAGIC) and not head.startswith(b"\x80"):  # neither format torch writes
        raise CheckpointError(_damaged(path, what, size, head, None))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "GLOBAL" in str(err):
            found = _unsupported_global(str(err))
            raise CheckpointError(
                f"{what} {path} holds Python objects, not only tensors{found}; loading it could run code, "
                "so it is refused: use a checkpoint saved by IDEE or the published code"
            ) from None
        raise CheckpointError(_damaged(path, what, size, head, err)) from None
    except _DAMAGED as err:
        raise CheckpointError(_damaged(path, what, size, head, err)) from None


#: what torch.load raises on a truncated or garbled file: its legacy (non-zip) reader unpacks raw
#: bytes and indexes what the restricted unpickler returned, so garbage fails in many ways
_DAMAGED = (EOFError, KeyError, RuntimeError, ValueError, UnicodeDecodeError, struct.error, IndexError,
            TypeError, AttributeError, OverflowError, AssertionError)


def _unsupported_global(message: str) -> str:
    for line in message.splitlines():
        if "GLOBAL" in line:
            words = line.split()
            name = words[words.index("GLOBAL") + 1] if words.index("GLOBAL") + 1 < len(words) else ""
            return f" (it names {name})" if name else ""
    return ""


def _damaged(path: Path, what: str, size: int, head: bytes, err: BaseException | None) -> str:
    if head.startswith(_ZIP_MAGIC):
        reason = "a PyTorch file that is truncated or corrupted"
        todo = "copy or download it again"
    elif _looks_like_text(head):
        reason = "a text file, not a PyTorch checkpoint"
        todo = "pass the .pth file"
    else:
        reason = "not a PyTorch checkpoint, or a damaged one"
        todo = "pass a .pth file saved by IDEE or the published code"
    if err is None:
        return f"{what} {path} ({size:,} bytes) is {reason}; {todo}"
    first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
    return f"{what} {path} ({size:,} bytes) is {reason} (torch: {first}); {todo}"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\n\r\t" for ch in text)


def describe_mismatch(own: Mapping[str, torch.Tensor], found: Mapping[str, Any]) -> str | None:
    """One line on how a state dict differs from a model's (None when it fits exactly)."""
    missing = [k for k in own if k not in found]
    unexpected = [k for k in found if k not in own]
    shapes = [
        f"{k}: file {tuple(v.shape)}, model {tuple(own[k].shape)}"
        for k, v in found.items()
        if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)
    ]
    parts = []
    if missing:
        parts.append(f"{len(missing)} of the model's entries missing (e.g. {', '.join(missing[:2])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unknown to the model (e.g. {', '.join(unexpected[:2])})")
    if shapes:
        parts.append(f"{len(shapes)} of another shape (e.g. {'; '.join(shapes[:2])})")
    return "; ".join(parts) or None


def write_error_message(path: str | Path, err: OSError, then: str) -> str:
    """``cannot write PATH: <cause>; <then>`` with the cause in words (a full disk said as such)."""
    causes = {
        errno.ENOSPC: "no space left on device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.EROFS: "read-only file system",
    }
    cause = causes.get(err.errno or -1, err.strerror or str(err))
    return f"cannot write {path}: {cause}; {then}"


def _write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write and flush to the disk: renamed over the previous file before its bytes were on the disk,
    a power cut or kernel crash could leave an empty or partial file under the final name."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_atomic(path: str | Path, data: bytes | memoryview, then: str) -> None:
    """Write ``data`` to a temporary file beside ``path``, then rename it over ``path``.

    A failed write (e.g. a full disk) leaves the previous ``path`` untouched and raises a
    :class:`StorageError` whose message ends with ``then`` (what the user can do next).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        _write_bytes(tmp, data)
        os.replace(tmp, path)
    except OSError as err:
        raise StorageError(write_error_message(path, err, then)) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Serialise in memory, then :func:`write_atomic`: a full disk never leaves half a checkpoint."""
    buf = io.BytesIO()
    torch.save(payload, buf)
    write_atomic(
        path, buf.getbuffer(),
        then="the previous checkpoint is kept; free space, then continue with --resume true",
    )
