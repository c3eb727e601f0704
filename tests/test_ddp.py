"""DDP: 2 CPU ranks (gloo) give the same metrics as 1 process.

The split has 9 samples and batch size 2, so the ranks get uneven shards (5 / 4);
every sample must be counted exactly once. The test forks the two ranks (no
re-import of torch: fast on 2 cores) and sets the variables torchrun sets; the
same worker runs under torchrun by hand:
``python -m torch.distributed.run --standalone --nproc_per_node 2 tests/test_ddp.py DIR``
(DIR must hold ``weights.pth``, a TinyModel state dict).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for p in (str(ROOT), str(Path(__file__).resolve().parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from test_engine import CubeDataset, TinyModel, run_fit, synthetic_collectors, tiny_config  # noqa: E402

from utils import engine, run_folder  # noqa: E402
from utils.distributed import cleanup  # noqa: E402


def _evaluate(tmp: Path, out_dir: Path) -> dict:
    cfg = tiny_config(tmp, "eval", batch_size=2)
    model = TinyModel()
    model.load_state_dict(torch.load(tmp / "weights.pth", weights_only=True))
    ds = CubeDataset(seed=1)
    cols = synthetic_collectors(cfg, save=True)(ds)
    return engine.evaluate(cfg, model, ds, cols, run_dir=out_dir, split="val")


def worker(tmp: Path) -> None:
    """Each torchrun rank: a short DDP fit, then a sharded evaluation written by rank 0."""
    run_fit(tiny_config(tmp, "ddp", n_epochs=1))
    res = _evaluate(tmp, tmp / "ddp_eval")
    if int(os.environ["RANK"]) == 0:
        (tmp / "ddp_eval" / "result.json").write_text(json.dumps(res))
    cleanup()


def _forked_rank(rank: int, tmp: Path, port: int) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    worker(tmp)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_ranks_match_one_process(tmp_path):
    import torch.multiprocessing as mp
    import xarray as xr

    torch.manual_seed(7)
    torch.save(TinyModel().state_dict(), tmp_path / "weights.pth")
    mp.start_processes(_forked_rank, args=(tmp_path, _free_port()), nprocs=2, start_method="fork", join=True)

    single = json.loads(json.dumps(_evaluate(tmp_path, tmp_path / "single_eval")))
    multi = json.loads((tmp_path / "ddp_eval" / "result.json").read_text())
    assert multi["n_samples"] == single["n_samples"] == 9
    assert multi["extremes"] == single["extremes"]
    assert multi["drivers"] == single["drivers"]
    assert multi["loss"] == single["loss"] or abs(multi["loss"] - single["loss"]) < 1e-6
    with xr.open_dataset(tmp_path / "ddp_eval" / "drivers_val.nc") as a, \
            xr.open_dataset(tmp_path / "single_eval" / "drivers_val.nc") as b:
        for name in ("driver", "coverage", "extreme"):
            np.testing.assert_array_equal(a[name].values, b[name].values)
        np.testing.assert_allclose(a["extreme_prob"].values, b["extreme_prob"].values, rtol=1e-6)

    run = tmp_path / "ddp"  # only rank 0 wrote the run folder
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert "2 rank(s)" in (run / "train.log").read_text()
    ckpt = run_folder.load_checkpoint_dict(run / "last.pth")
    assert len(ckpt["rng_state"]) == 2  # each rank's RNG stream, for resuming


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
