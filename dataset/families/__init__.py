"""Dataset families: how a kind of data is loaded, checked, scored and reported, registered by name.

A family is one module that subclasses :class:`DatasetFamily` and registers an instance::

    from dataset.families import DatasetFamily, register_family

    class MyCubes(DatasetFamily):
        name = "mycubes"
        def load(self, cfg, split): ...

    register_family(MyCubes())

``--dataset mycubes`` then works with every method and entry point (``utils.run``). The
built-in families are ``synthetic`` (benchmarks with driver truth) and the reanalysis
families ``ERA5_Land`` and ``CERRA`` (NOAA drought labels, no driver truth).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from utils.registry import Registry

__all__ = ["DatasetFamily", "DATASETS", "register_family", "dataset_family"]


class DatasetFamily:
    """What the run API needs from a kind of data; subclasses override what differs."""

    name: str = ""
    #: YAML preset loaded under the user's options (``configs/<name>.yaml``), None for none
    preset: str | None = None
    #: True when the data carry the true drivers (driver metrics, the val_f1 threshold rule)
    driver_truth: bool = True
    #: True when the family re-assembles IDE's flags with a DriverCollector, so --driver_gate applies
    driver_gate: bool = False

    def load(self, cfg: Any, split: str, *, augment: bool = False) -> Dataset:
        """The dataset of ``split``; ``augment`` (training only) applies the ``is_aug`` option."""
        raise NotImplementedError

    def check(self, cfg: Any, train_set: Dataset, val_set: Dataset) -> None:
        """Raise ValueError (naming the option) when the options cannot work with these data."""
        for split, ds in (("train", train_set), ("val", val_set)):
            if len(ds) < 1:
                raise ValueError(f"the {split} split has no samples (check its period against delta_t = {cfg.delta_t})")

    def val_collectors(self, cfg: Any, dataset: Dataset, *, drivers: bool) -> list[Any]:
        """Collectors of a validation pass; ``drivers`` False for methods whose flags need a threshold."""
        raise NotImplementedError

    def test_collectors(self, cfg: Any, dataset: Dataset, *, run_dir: Path, split: str,
                        attrs: dict[str, str]) -> list[Any]:
        """Collectors of a test pass, including the prediction writer when ``cfg.save_predictions``."""
        raise NotImplementedError

    def test_metrics(self, cfg: Any, dataset: Dataset, res: dict[str, Any]) -> dict[str, Any]:
        """The JSON-ready metrics of a test pass (``metrics_<split>.json`` adds split and checkpoint)."""
        raise NotImplementedError

    def report(self, label: str, metrics: dict[str, Any]) -> str:
        """The table a test run prints."""
        raise NotImplementedError

    def threshold_rules(self, cfg: Any = None) -> Sequence[str]:
        """Driver-threshold rules these data support (val_f1 needs driver truth)."""
        return ("val_f1", "normal_percentile", "fixed") if self.driver_truth else ("normal_percentile", "fixed")


DATASETS: Registry[DatasetFamily] = Registry(
    "dataset family",
    "dataset",
    builtins=("dataset.families.synthetic", "dataset.families.reanalysis", "dataset.families.datacube"),
)


def register_family(family: DatasetFamily) -> DatasetFamily:
    """Make ``family.name`` a valid ``--dataset`` everywhere."""
    return DATASETS.register(family.name, family)


def dataset_family(name: str) -> DatasetFamily:
    """The registered family ``name``; an unknown name is one line with the choices."""
    return DATASETS.get(name)
