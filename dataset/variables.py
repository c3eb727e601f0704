"""Variable and region names of the built-in data (a leaf module: the configuration and the
published-config reader both read it)."""

SYNTHETIC_VARIABLES = [f"var_0{i}" for i in range(1, 7)]
ERA5_LAND_VARIABLES = ["d2m", "t2m", "fal", "sp", "e", "tp", "skt", "stl1", "swvl1"]
CERRA_VARIABLES = [
    "al", "hcc", "lcc", "liqvsm", "mcc", "msl", "r2", "si10", "skt",
    "sot", "sp", "sr", "t2m", "tcc", "tciwv", "tp", "vsw", "wdir10",
]
REGIONS = ["AFR-11", "CAS-11", "EAS-11", "EUR-11", "NAM-11", "SAM-11"]
#: dataset family -> its variables (guessing the family of a published config from its variables)
VARIABLES_BY_DATASET = {"synthetic": SYNTHETIC_VARIABLES, "ERA5_Land": ERA5_LAND_VARIABLES, "CERRA": CERRA_VARIABLES}
