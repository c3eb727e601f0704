"""ERA5-Land loader (CORDEX regions) on the published tree; all logic in ``dataset.real_dataset``.

    <root_ERA5_Land>/<REGION>/<REGION>_statistic_train.json, <REGION>_climatology_pixels_train.nc,
                              <YYYY>/<YYYY><WWW>.nc           (statistic, rlat, rlon) per variable
    <root_NOAA>/<REGION>/<REGION>_masks.nc                    lsm (1 land), mask_no_vegetation (1 = none)
                         <YYYY>/<...><WWW>.VH.nc              VCI, TCI, VHI, mask_cold_surface

``root_ERA5_Land`` / ``root_NOAA`` may also point at the region folder itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dataset.real_dataset import RealDataset, RealLayout

REGIONS = ("AFR-11", "CAS-11", "EAS-11", "EUR-11", "NAM-11", "SAM-11")
# North pole (latitude, longitude) of the CORDEX rotated grids (CORDEX archive specification,
# domain table); used for the prediction files' grid mapping when the weekly files carry none.
CORDEX_POLES = {
    "AFR-11": (90.0, -180.0),
    "CAS-11": (43.48, -123.34),
    "EAS-11": (77.61, -64.78),
    "EUR-11": (39.25, -162.0),
    "NAM-11": (42.5, 83.0),
    "SAM-11": (70.6, -56.06),
}


def rotated_pole(region: str) -> tuple[str, dict]:
    """CF ``rotated_latitude_longitude`` grid mapping of a CORDEX region."""
    lat, lon = CORDEX_POLES[region]
    return "rotated_pole", {
        "grid_mapping_name": "rotated_latitude_longitude",
        "grid_north_pole_latitude": lat,
        "grid_north_pole_longitude": lon,
        "north_pole_grid_longitude": 0.0,
        "comment": f"pole of the CORDEX {region} domain",
    }


def _region_dir(root: str, region: str, marker: str) -> Path:
    """``<root>/<region>``, or ``root`` itself when it already is the region folder."""
    base = Path(root)
    if not (base / region).is_dir() and (base / marker).exists():
        return base
    return base / region


def era5_land_layout(cfg: Any) -> RealLayout:
    region = cfg.region
    if region not in REGIONS:
        raise ValueError(f"option 'region': {region!r} is not one of {', '.join(REGIONS)}")
    root = _region_dir(cfg.root_ERA5_Land, region, f"{region}_statistic_train.json")
    root_noaa = _region_dir(cfg.root_NOAA, region, f"{region}_masks.nc")
    masks = root_noaa / f"{region}_masks.nc"
    return RealLayout(
        name=f"ERA5-Land {region}",
        root=root,
        root_option="root_ERA5_Land",
        root_noaa=root_noaa,
        noaa_option="root_NOAA",
        statistics=root / f"{region}_statistic_train.json",
        climatology=root / f"{region}_climatology_pixels_train.nc",
        lsm=(masks, "lsm"),
        no_vegetation=(masks, "mask_no_vegetation"),
        grid_mapping=rotated_pole(region),
    )


class ERA5LandDataset(RealDataset):
    """Weekly ERA5-Land samples of one split (``train``/``val``/``test``) of ``cfg.region``."""

    def __init__(self, cfg: Any, split: str) -> None:
        super().__init__(cfg, split, era5_land_layout(cfg))

    @classmethod
    def from_config(cls, cfg: Any, split: str) -> ERA5LandDataset:
        return cls(cfg, split)
