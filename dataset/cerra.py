"""CERRA loader on the published tree; all logic in ``dataset.real_dataset``.

<root_CERRA>/CERRA_statistic_train.json, CERRA_climatology_pixels_train.nc,
             CERRA_static_variables.nc                    lsm (fractional; > 0.5 = land), orog, ...
             <YYYY>/<YYYY><WWW>.nc                        (statistic, y, x) per variable
<root_NOAA_CERRA>/masks.nc                                mask_no_vegetation (1 = none)
                  <YYYY>/<...><WWW>.VH.nc                 VCI, TCI, VHI, mask_cold_surface (y, x)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataset.real_dataset import RealDataset, RealLayout


def cerra_layout(cfg: Any) -> RealLayout:
    root, root_noaa = Path(cfg.root_CERRA), Path(cfg.root_NOAA_CERRA)
    return RealLayout(
        name="CERRA",
        root=root,
        root_option="root_CERRA",
        root_noaa=root_noaa,
        noaa_option="root_NOAA_CERRA",
        statistics=root / "CERRA_statistic_train.json",
        climatology=root / "CERRA_climatology_pixels_train.nc",
        lsm=(root / "CERRA_static_variables.nc", "lsm"),
        no_vegetation=(root_noaa / "masks.nc", "mask_no_vegetation"),
    )


class CERRADataset(RealDataset):
    """Weekly CERRA samples of one split (``train``/``val``/``test``)."""

    def __init__(self, cfg: Any, split: str) -> None:
        super().__init__(cfg, split, cerra_layout(cfg))

    @classmethod
    def from_config(cls, cfg: Any, split: str) -> CERRADataset:
        return cls(cfg, split)
