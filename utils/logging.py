"""Run folder, text log and TensorBoard writer; only rank 0 writes anything.

Other ranks get a :class:`RunLogger` whose methods are no-ops, so the engine
never branches on the rank to log.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from utils.collectors import Collector
from utils.errors import UserError

__all__ = [
    "RunLogger",
    "RunFolderError",
    "RUN_FILES",
    "progress",
    "flatten_metrics",
    "sample_images",
    "exit_with_error",
    "SampleImages",
    "log_epoch",
    "dig",
    "RERUN_TEST",
]

#: what to do after an output of a test run could not be written
RERUN_TEST = "free space (or fix the folder's permissions), then run the test again"

#: files a training run writes into ``<dir_log>/<name>/`` (``--overwrite true`` removes exactly these)
RUN_FILES = (
    "config.yaml",
    "train.log",
    "best_loss_model.pth",
    "best_F1_model.pth",
    "best_driver_F1_model.pth",
    "last.pth",
    "refit_model.pth",
    "starts.json",
)


class RunFolderError(UserError, ValueError):
    """The run folder is in a state the requested action must not touch (a user error, exit 2)."""


def exit_with_error(prog: str, err: BaseException) -> NoReturn:
    """``prog: error: message`` on stderr, exit code 2 (argparse's convention for a usage error)."""
    print(f"{prog}: error: {err}", file=sys.stderr)
    raise SystemExit(2) from None


def progress(iterable: Any, enabled: bool, **kwargs: Any) -> Any:
    """A tqdm bar on rank 0; tqdm itself turns it off when stderr is no terminal (``disable=None``)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=None if enabled else True, dynamic_ncols=True, leave=False, **kwargs)


class _TqdmHandler(logging.StreamHandler):
    """Console handler that does not break an active tqdm bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from tqdm import tqdm

            tqdm.write(self.format(record), file=sys.stdout)
        except Exception:  # noqa: BLE001 - logging must never crash a run
            self.handleError(record)


class RunLogger:
    """Text log (``train.log`` or given file) + console + TensorBoard for one run folder.

    ``enabled=False`` (ranks > 0) makes every method a no-op. TensorBoard is opened
    lazily so scripts that never log scalars do not import it.
    """

    def __init__(
        self,
        run_dir: str | Path,
        enabled: bool = True,
        log_file: str | None = "train.log",
        tensorboard: bool = True,
        purge_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self._tb_wanted = tensorboard and enabled
        self._purge_step = purge_step
        self._writer: Any = None
        self._log = logging.getLogger(f"idee.run.{id(self)}")
        self._log.propagate = False
        self._log.setLevel(logging.INFO)
        self._log.handlers.clear()
        if not enabled:
            self._log.addHandler(logging.NullHandler())
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        console = _TqdmHandler()
        console.setFormatter(logging.Formatter("%(message)s"))
        self._log.addHandler(console)
        if log_file:
            fh = logging.FileHandler(self.run_dir / log_file, mode="a", encoding="utf-8")
            fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
            self._log.addHandler(fh)

    # ---- text ----------------------------------------------------------------------------
    def info(self, msg: str) -> None:
        self._log.info(msg)

    def error(self, msg: str) -> None:
        """An error the entry script reports and exits on; kept in the log file (console: the script)."""
        record = self._log.makeRecord(self._log.name, logging.ERROR, __file__, 0, f"error: {msg}", None, None)
        for handler in self._log.handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(record)

    def warning(self, msg: str) -> None:
        self._log.warning(f"warning: {msg}")

    # ---- TensorBoard -----------------------------------------------------------------------
    @property
    def writer(self) -> Any:
        if self._writer is None and self._tb_wanted:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir), purge_step=self._purge_step)
        return self._writer

    def scalars(self, values: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        for tag, val in values.items():
            self.writer.add_scalar(tag, val, step)

    def image(self, tag: str, img: np.ndarray, step: int) -> None:
        """``img`` [H, W] in [0, 1] (grey) or [H, W, 3]."""
        if self.writer is None:
            return
        fmt = "HW" if img.ndim == 2 else "HWC"
        self.writer.add_image(tag, np.asarray(img, dtype=np.float32), step, dataformats=fmt)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        for h in list(self._log.handlers):
            h.close()
            self._log.removeHandler(h)


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Nested metric dicts -> ``{"a/b/c": float}``, dropping None, counts and non-numbers."""
    out: dict[str, float] = {}
    for key, val in metrics.items():
        tag = f"{prefix}/{key}" if prefix else str(key)
        if isinstance(val, dict):
            out.update(flatten_metrics(val, tag))
        elif isinstance(val, (int, float)) and not isinstance(val, bool) and key not in _COUNTS:
            out[tag] = float(val)
    return out


_COUNTS = ("tp", "fp", "fn", "tn", "n_true", "n_pred")  # counts: in the JSON, not TensorBoard


def _upscale(img: np.ndarray, min_size: int = 64) -> np.ndarray:
    k = max(1, int(np.ceil(min_size / max(1, min(img.shape[:2])))))
    return np.kron(img, np.ones((k, k), dtype=img.dtype)) if k > 1 else img


def sample_images(batch: dict, out: Any, index: int = 0) -> dict[str, np.ndarray]:
    """Grey images of one sample for TensorBoard: predicted | true extreme, and drivers.

    ``drivers`` is a grid with one row per variable and, per week (newest left),
    a predicted | true pair; a 1-px grey gap separates the cells.
    """
    images: dict[str, np.ndarray] = {}
    logits = getattr(out, "logits", None)
    if logits is not None and "mask_extreme" in batch:
        prob = 1 / (1 + np.exp(-logits[index, 0].detach().float().cpu().numpy()))
        true = batch["mask_extreme"][index].detach().float().cpu().numpy()
        gap = np.full((prob.shape[0], 1), 0.5, dtype=np.float32)
        images["extremes_pred_vs_true"] = _upscale(np.concatenate([prob, gap, true], axis=1))
    anomaly = getattr(out, "anomaly", None)
    if anomaly is not None and "mask_anomaly" in batch:
        pred = anomaly[index].detach().float().cpu().numpy()  # [V, T, H, W]
        true = batch["mask_anomaly"][index].detach().float().cpu().numpy()
        v, t, h, w = pred.shape
        k = max(1, int(np.ceil(16 / max(1, min(h, w)))))
        cell = (h * k, w * k)
        grid = np.full((v * (cell[0] + 1), t * (2 * cell[1] + 2)), 0.5, dtype=np.float32)
        for i in range(v):
            for j in range(t):
                y0, x0 = i * (cell[0] + 1), j * (2 * cell[1] + 2)
                block = np.ones((k, k))
                grid[y0 : y0 + cell[0], x0 : x0 + cell[1]] = np.kron(pred[i, j], block)
                grid[y0 : y0 + cell[0], x0 + cell[1] + 1 : x0 + 2 * cell[1] + 1] = np.kron(true[i, j], block)
        images["drivers_pred_vs_true"] = grid
    return images


class SampleImages(Collector):
    """Collector that keeps TensorBoard images of the first ``n`` samples seen on this rank."""

    name = None

    def __init__(self, n: int = 2) -> None:
        self.n = n
        self.images: list[dict[str, np.ndarray]] = []

    def update(self, batch: dict, out: Any) -> None:
        for i in range(int(batch["x"].shape[0])):
            if len(self.images) >= self.n:
                return
            self.images.append(sample_images(batch, out, i))

    def all_reduce(self) -> None:
        pass

    def result(self) -> dict:
        return {}


def _fmt(x: Any) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def log_epoch(
    log: RunLogger,
    cfg: Any,
    epoch: int,
    train: dict[str, float],
    val: dict[str, Any],
    improved: list[str],
    images: SampleImages,
) -> None:
    step = epoch + 1
    scalars = {f"train/{k}": v for k, v in train.items() if k not in ("samples", "seconds", "lr")}
    scalars["lr"] = train["lr"]
    scalars["time/train_seconds"] = train["seconds"]
    scalars["time/train_samples_per_s"] = train["samples"] / max(train["seconds"], 1e-9)
    if val:
        scalars["val/loss"] = val["loss"]
        scalars.update({f"val/{k}": v for k, v in val.get("loss_parts", {}).items()})
        rest = {k: v for k, v in val.items() if k not in ("loss", "loss_parts", "n_samples")}
        scalars.update(flatten_metrics(rest, "val"))
    log.scalars(scalars, step)
    for i, imgs in enumerate(images.images):
        for tag, img in imgs.items():
            log.image(f"val_sample{i}/{tag}", img, step)
    msg = (
        f"epoch {step}/{cfg.n_epochs}  train loss {train['loss']:.4f}  lr {train['lr']:.2e}  "
        f"({train['seconds']:.1f} s, {train['samples']} samples)"
    )
    if val:
        msg += (
            f"  | val loss {val['loss']:.4f}  extreme F1 {_fmt(dig(val, 'extremes', 'f1'))}"
            f"  driver F1 {_fmt(dig(val, 'drivers', 'pooled', 'f1'))}"
        )
    if improved:
        msg += "  [best: " + ", ".join(improved) + "]"
    log.info(msg)


def dig(d: dict, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d
