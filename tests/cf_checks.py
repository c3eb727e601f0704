"""CF-1.8 checks of a prediction file opened with xarray (cf-xarray plus the rules cf-xarray does not check)."""

from __future__ import annotations

import numpy as np
import xarray as xr


def check_cf(ds: xr.Dataset, latlon: tuple[str, str]) -> None:
    """Assert the attribute scheme of ``utils.predictions`` and what a CF reader needs of it."""
    import cf_xarray  # noqa: F401  (registers the .cf accessor)

    assert ds.attrs["Conventions"] == "CF-1.8"
    lat, lon = latlon
    assert lat in ds.coords and lon in ds.coords, f"{latlon} must open as coordinates"
    assert ds.cf.coordinates["latitude"] == [lat] and ds.cf.coordinates["longitude"] == [lon]
    assert ds[lat].attrs["units"] == "degrees_north" and ds[lon].attrs["units"] == "degrees_east"
    for name, var in ds.variables.items():
        a = var.attrs
        assert "long_name" in a or "standard_name" in a or "grid_mapping_name" in a, f"{name}: no long_name"
        for ref in a.get("coordinates", "").split():
            assert ref in ds.variables, f"{name}: coordinates names missing variable {ref}"
        if "grid_mapping" in a:
            gm = ds[a["grid_mapping"]]
            assert gm.attrs["grid_mapping_name"], f"{name}: grid_mapping variable without grid_mapping_name"
    for name, da in ds.data_vars.items():
        if "flag_values" in da.attrs:
            values = np.asarray(da.attrs["flag_values"])
            assert values.dtype == da.dtype, f"{name}: flag_values {values.dtype} != variable {da.dtype}"
            assert len(da.attrs["flag_meanings"].split()) == values.size
            assert da.cf.is_flag_variable
            assert set(np.unique(da.values)) <= set(values.tolist()), f"{name}: values outside flag_values"
        if set(ds[lat].dims) <= set(da.dims) and da.ndim >= 2:
            assert lat in da.coords and lon in da.coords, f"{name}: lat/lon are not its coordinates"
