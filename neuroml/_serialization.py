"""Saving and loading estimators: ``NeuroMLEstimator.save`` and ``neuroml.load``.

The archive is a ``torch.save`` file read back with ``torch.load(weights_only=True)``, a
format that cannot run code on load: parameters and plain fitted attributes as JSON,
numeric arrays and tensors as tensors, torch module weights as state dicts. Estimators
given as parameters or held as fitted attributes (alone or in lists/tuples) are stored as
tagged plain data (``{"__estimator__": "neuroml.module.Class", "params": ...,
"fitted": ...}``, their tensors and module weights in the archive's ``blobs``) and rebuilt
on load; only :class:`~neuroml.base.NeuroMLEstimator` subclasses under ``neuroml.`` and
unfitted scikit-learn ``BaseEstimator`` subclasses under ``sklearn.`` (rebuilt from
``get_params``) may be instantiated. DataFrames and DataArrays are stored as tagged
columns / values with their coordinates.
"""

from __future__ import annotations

import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
import xarray as xr
from sklearn.base import BaseEstimator

from . import __version__
from .device import resolve_device, to_numpy
from .errors import NeuroMLError, ParameterError, RecordingError

if TYPE_CHECKING:
    from .base import NeuroMLEstimator

__all__ = ["load", "save_estimator"]

_FORMAT = "neuroml-estimator/1"


def save_estimator(est, path) -> Path:
    """Write the fitted estimator ``est`` to ``path`` (see :meth:`NeuroMLEstimator.save`)."""
    path = Path(path)
    blobs: list[torch.Tensor] = []
    payload: dict[str, Any] = {
        "format": _FORMAT,
        "neuroml_version": __version__,
        "class": f"{type(est).__module__}.{type(est).__qualname__}",
        "params": json.dumps(_to_json(est.get_params(deep=False), blobs)),
    }
    payload.update(_fitted_state(est, blobs))
    payload["blobs"] = blobs
    payload["attributes"] = json.dumps(payload["attributes"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load(path, *, device: str | None = None) -> NeuroMLEstimator:
    """Load an estimator written by :meth:`NeuroMLEstimator.save`.

    The file is read with ``torch.load(weights_only=True)``: a file that carries a
    pickled object (code) is refused. Tensors are mapped to the CPU first, so a model
    saved on a GPU loads on a CPU-only machine.

    Parameters
    ----------
    path : str or Path
    device : str, default=None
        Device for the loaded estimator's ``device_`` (it must exist here). None: the
        device the estimator was saved from when this machine has it, else the CPU, so
        a model saved on a GPU loads on a CPU-only machine.

    Returns
    -------
    estimator : NeuroMLEstimator
    """
    from .base import NeuroMLEstimator  # base imports this module

    path = Path(path)
    if not path.is_file():
        raise RecordingError(f"No saved estimator at '{path}'.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise NeuroMLError(
            f"Refusing to load '{path}': it is not a neuroml estimator file or it holds "
            f"objects other than tensors and plain data ({type(err).__name__}: {str(err)[:200]})."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise NeuroMLError(f"'{path}' is not a neuroml estimator file (format {_FORMAT}).")
    module_name, _, cls_name = payload["class"].rpartition(".")
    if not module_name.startswith("neuroml."):
        raise NeuroMLError(f"'{path}' names class {payload['class']!r}, which is not neuroml's.")
    cls = getattr(importlib.import_module(module_name), cls_name)
    if not (isinstance(cls, type) and issubclass(cls, NeuroMLEstimator)):
        raise NeuroMLError(f"'{path}' names {payload['class']!r}, which is not an estimator.")
    blobs = payload.get("blobs", [])
    params = _from_json(json.loads(payload["params"]), blobs, device)
    attributes = json.loads(payload["attributes"])
    return _restore(cls, params, payload["tensors"], payload["modules"], attributes, blobs, device)


def _fitted_state(est, blobs: list) -> dict[str, Any]:
    """The fitted attributes of ``est``: tensors, module state dicts and plain data.

    Numeric arrays and tensors go in ``"tensors"``, torch module state dicts in
    ``"modules"``, everything else through :func:`_to_json` in ``"attributes"``
    (nested estimators put their own tensors in ``blobs``).
    """
    state: dict[str, Any] = {"tensors": {}, "modules": {}, "attributes": {}}
    for name in est._lazy_attributes:  # made on first use: made now, to be saved
        getattr(est, name, None)
    for key, value in est.__dict__.items():
        if not key.endswith("_") or key.startswith("_"):
            continue
        if key in est._module_attributes or isinstance(value, torch.nn.Module):
            state["modules"][key] = {k: v.detach().cpu() for k, v in value.state_dict().items()}
        elif isinstance(value, torch.Tensor):
            state["tensors"][key] = value.detach().cpu()
        elif isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            state["tensors"][key] = torch.from_numpy(np.ascontiguousarray(value).copy())
        else:
            state["attributes"][key] = _to_json(value, blobs)
    return state


def _restore(cls, params, tensors, modules, attributes, blobs, device) -> NeuroMLEstimator:
    """Build ``cls(**params)`` and set its saved fitted state (see :func:`_fitted_state`)."""
    est = cls(**params)
    for key, value in attributes.items():
        setattr(est, key, _from_json(value, blobs, device))
    for key, value in tensors.items():
        setattr(est, key, to_numpy(value))
    saved_device = getattr(est, "device_", None)
    if device is not None:
        est.device_ = resolve_device(device)  # asked for explicitly: it must exist here
    else:
        try:
            est.device_ = resolve_device(saved_device) if saved_device is not None else \
                torch.device("cpu")
        except NeuroMLError:
            est.device_ = torch.device("cpu")
    if modules:
        built = est._build_module()
        for key, state in modules.items():
            module = built[key]
            # Rebuild in the saved precision (load_state_dict would cast to the fresh
            # module's, e.g. float64 weights into float32 parameters).
            floats = {v.dtype for v in state.values() if v.is_floating_point()}
            if len(floats) == 1:
                module = module.to(floats.pop())
            module.load_state_dict(state)
            module.eval()
            setattr(est, key, module.to(est.device_))
    return est


def _estimator_class(name: str, where: str = "the file"):
    """The class ``name`` names, if it is one neuroml (or scikit-learn) may rebuild.

    Only subclasses of :class:`NeuroMLEstimator` under ``neuroml.`` and subclasses of
    :class:`sklearn.base.BaseEstimator` under ``sklearn.`` are allowed.
    """
    from .base import NeuroMLEstimator  # base imports this module

    if not isinstance(name, str):
        raise NeuroMLError(f"{where} names estimator class {name!r}, which is not a class path.")
    module_name, _, cls_name = name.rpartition(".")
    if module_name.startswith("neuroml."):
        base = NeuroMLEstimator
    elif module_name.startswith("sklearn."):
        base = BaseEstimator
    else:
        raise NeuroMLError(
            f"{where} names class {name!r}, which is not neuroml's (or scikit-learn's).")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError):
        raise NeuroMLError(f"{where} names class {name!r}, which does not exist.") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise NeuroMLError(f"{where} names {name!r}, which is not an estimator.")
    return cls


def _estimator_to_json(value, blobs):
    from .base import NeuroMLEstimator  # base imports this module

    cls_name = f"{type(value).__module__}.{type(value).__qualname__}"
    if isinstance(value, NeuroMLEstimator):
        fitted = None
        if any(k.endswith("_") and not k.startswith("_") for k in value.__dict__):
            state = _fitted_state(value, blobs)
            for group in ("tensors",):
                for key, tensor in state[group].items():
                    blobs.append(tensor)
                    state[group][key] = len(blobs) - 1
            for key, sd in state["modules"].items():
                refs = {}
                for name, tensor in sd.items():
                    blobs.append(tensor)
                    refs[name] = len(blobs) - 1
                state["modules"][key] = refs
            fitted = state
        return {"__estimator__": cls_name,
                "params": _to_json(value.get_params(deep=False), blobs), "fitted": fitted}
    if not type(value).__module__.startswith("sklearn."):
        raise ParameterError(
            f"Cannot save estimator {cls_name}: only neuroml estimators and scikit-learn's "
            "own (unfitted, as parameters) can be saved.")
    if any(k.endswith("_") and not k.startswith("_") for k in vars(value)):
        raise ParameterError(
            f"Cannot save the fitted scikit-learn estimator {cls_name}: scikit-learn "
            "estimators are saved only as unfitted parameters (rebuilt from get_params).")
    return {"__estimator__": cls_name, "params": _to_json(value.get_params(deep=False), blobs),
            "fitted": None}


def _estimator_from_json(value, blobs, device):
    from .base import NeuroMLEstimator  # base imports this module

    cls = _estimator_class(value["__estimator__"], "The file")
    params = _from_json(value["params"], blobs, device)
    fitted = value.get("fitted")
    if fitted is None:
        return cls(**params)
    if not issubclass(cls, NeuroMLEstimator):
        raise NeuroMLError(f"The file holds fitted state for {value['__estimator__']!r}, "
                           "which only neuroml estimators may have.")

    def blob(i):
        if not (isinstance(i, int) and 0 <= i < len(blobs)):
            raise NeuroMLError(f"The file refers to tensor {i!r}, which it does not hold.")
        return blobs[i]

    tensors = {k: blob(i) for k, i in fitted["tensors"].items()}
    modules = {k: {n: blob(i) for n, i in refs.items()} for k, refs in fitted["modules"].items()}
    return _restore(cls, params, tensors, modules, fitted["attributes"], blobs, device)


def _to_json(value, blobs: list | None = None):
    """Plain data for JSON, with tags for tuples, arrays, DataFrames, DataArrays,
    devices and estimators.

    An estimator becomes ``{"__estimator__": "module.Class", "params": ..., "fitted":
    ...}``; a fitted neuroml estimator's tensors and module weights are appended to
    ``blobs`` and referred to by index. Scikit-learn estimators are stored only
    unfitted, by their ``get_params`` (as parameters, e.g. ``estimator=Ridge()``).
    """
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_to_json(v, blobs) for v in value]}
    if isinstance(value, list):
        return [_to_json(v, blobs) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"__dict__": {k: _to_json(v, blobs) for k, v in value.items()}}
        return {"__items__": [[_to_json(k, blobs), _to_json(v, blobs)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": _to_json(value.tolist(), blobs), "dtype": value.dtype.str}
    if isinstance(value, pd.DataFrame):
        return {"__dataframe__": {c: _to_json(value[c].to_numpy(), blobs) for c in value.columns},
                "columns": [str(c) for c in value.columns]}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if isinstance(value, torch.dtype):
        return {"__torch_dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, xr.DataArray):
        return {"__dataarray__": _to_json(np.asarray(value.values), blobs),
                "dims": [str(d) for d in value.dims],
                "coords": {str(name): {"dims": [str(d) for d in c.dims],
                                       "values": _to_json(np.asarray(c.values), blobs)}
                           for name, c in value.coords.items()},
                "attrs": _to_json(dict(value.attrs), blobs),
                "name": _to_json(value.name, blobs)}
    if isinstance(value, BaseEstimator):
        if blobs is None:
            blobs = []
        return _estimator_to_json(value, blobs)
    raise ParameterError(
        f"Cannot save a value of type {type(value).__name__} ({value!r:.80}); "
        "estimator parameters and fitted attributes must be plain data or arrays."
    )


def _from_json(value, blobs=(), device=None):
    if isinstance(value, list):
        return [_from_json(v, blobs, device) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tuple__" in value:
        return tuple(_from_json(v, blobs, device) for v in value["__tuple__"])
    if "__dict__" in value:
        return {k: _from_json(v, blobs, device) for k, v in value["__dict__"].items()}
    if "__items__" in value:
        return {_from_json(k, blobs, device): _from_json(v, blobs, device) for k, v in value["__items__"]}
    if "__ndarray__" in value:
        return np.array(_from_json(value["__ndarray__"], blobs, device), dtype=np.dtype(value["dtype"]))
    if "__dataframe__" in value:
        cols = value["__dataframe__"]
        return pd.DataFrame({c: _from_json(cols[c], blobs, device) for c in value["columns"]})
    if "__dataarray__" in value:
        coords = {name: (tuple(c["dims"]), _from_json(c["values"], blobs, device))
                  for name, c in value["coords"].items()}
        return xr.DataArray(_from_json(value["__dataarray__"], blobs, device),
                            dims=tuple(value["dims"]), coords=coords,
                            attrs=_from_json(value["attrs"], blobs, device),
                            name=_from_json(value["name"], blobs, device))
    if "__estimator__" in value:
        return _estimator_from_json(value, blobs, device)
    if "__device__" in value:
        return torch.device(value["__device__"])
    if "__torch_dtype__" in value:
        return getattr(torch, value["__torch_dtype__"])
    return value
