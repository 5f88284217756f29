"""Find every public estimator in the package (for the common conformance test)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

__all__ = ["all_estimators"]


def all_estimators() -> list[tuple[str, type]]:
    """Every public, concrete :class:`~neuroml.base.NeuroMLEstimator` subclass in neuroml.

    Walks all modules of the package (skipping private ones), so an estimator is
    found the day it is added.

    Returns
    -------
    list of (name, class), sorted by name
    """
    import neuroml
    from neuroml.base import NeuroMLEstimator

    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(neuroml.__path__, prefix="neuroml."):
        parts = info.name.split(".")
        if any(p.startswith("_") for p in parts[1:]) or "tests" in parts:
            continue
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, NeuroMLEstimator)
                and obj is not NeuroMLEstimator
                and not name.startswith("_")
                and obj.__module__.startswith("neuroml.")
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())
