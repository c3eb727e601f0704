"""Maps of CERRA weekly files (``CERRA/<YYYY>/<YYYY><WWW>.nc``, dims statistic, y, x).

    python -m vis.plot_cerra --root ../CERRA --period 2021001 2021052 --max_weeks 4 \\
        --variables t2m tp vsw --noaa_root ../NOAA_CERRA --masks ../NOAA_CERRA/masks.nc --out figs/cerra
"""

from __future__ import annotations

from pathlib import Path

from config import CERRA_VARIABLES
from vis.common import run_main
from vis.weekly import climate_main


def main(argv: list[str] | None = None) -> list[Path]:
    return climate_main("CERRA", CERRA_VARIABLES, argv, __doc__)


if __name__ == "__main__":
    run_main(main)
