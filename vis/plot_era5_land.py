"""Maps of ERA5-Land weekly files (``<REGION>/<YYYY>/<YYYY><WWW>.nc``, dims statistic, rlat, rlon).

    python -m vis.plot_era5_land --root ../ERA5-Land/EUR-11 --weeks 2022030 --variables t2m tp swvl1 \\
        --noaa_root ../NOAA_CORDEX/EUR-11 --masks ../NOAA_CORDEX/EUR-11/EUR-11_masks.nc --out figs/era5
"""

from __future__ import annotations

from pathlib import Path

from config import ERA5_LAND_VARIABLES
from vis.common import run_main
from vis.weekly import climate_main


def main(argv: list[str] | None = None) -> list[Path]:
    return climate_main("ERA5_Land", ERA5_LAND_VARIABLES, argv, __doc__)


if __name__ == "__main__":
    run_main(main)
