"""The estimator base class every neuroml estimator derives from, and save/load.

The contract (see ``docs/architecture.md``):

- ``__init__`` stores keyword arguments verbatim; :meth:`NeuroMLEstimator._validate_params`
  checks them against the class's ``_parameter_constraints`` when ``fit`` starts.
- ``device="auto"`` is resolved into ``device_`` by :meth:`NeuroMLEstimator._resolve_device`.
- Inputs go through :meth:`NeuroMLEstimator._validate_X`, which returns a tensor on
  ``device_`` and an :class:`~neuroml.device.InputInfo` that returns outputs in the
  input's type.
- Fitted state ends in ``_``; learned arrays are NumPy; torch modules are moved to the
  CPU when pickled.
- :meth:`NeuroMLEstimator.save` / :func:`load` use ``torch.save`` / ``torch.load(weights_only=True)``
  with parameters as JSON, a format that cannot run code on load. Estimators given as
  parameters or held as fitted attributes (alone or in lists/tuples) are stored as
  tagged plain data (``{"__estimator__": "neuroml.module.Class", "params": ...,
  "fitted": ...}``, their tensors and module weights in the archive's ``blobs``) and
  rebuilt on load; only :class:`NeuroMLEstimator` subclasses under ``neuroml.`` and
  unfitted scikit-learn ``BaseEstimator`` subclasses under ``sklearn.`` (rebuilt from
  ``get_params``) may be instantiated. A fitted scikit-learn estimator cannot be saved
  (a clear :class:`~neuroml.errors.ParameterError`). DataArrays are stored as
  ``{"__dataarray__": values, "dims", "coords", "attrs", "name"}``.
"""

from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
import xarray as xr
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from . import __version__
from ._validation import validate_params
from .device import InputInfo, inspect_input, resolve_device, to_numpy, to_tensor
from .errors import NeuroMLError, NotFittedError, ParameterError, RecordingError

__all__ = ["NeuroMLEstimator", "load"]

_FORMAT = "neuroml-estimator/1"


@functools.cache
def _param_names(cls) -> tuple[str, ...]:
    return tuple(BaseEstimator._get_param_names.__func__(cls))


def _plain(X, y, min_samples: int, multi_output: bool) -> bool:
    """Whether ``X`` (and ``y``) are NumPy float arrays that scikit-learn's
    ``validate_data`` would pass unchanged: ``X`` 2-D with samples and features, ``y``
    1-D (or 2-D for multi-output) of the same length, all finite."""
    floats = (np.float64, np.float32)
    if not (type(X) is np.ndarray and X.dtype in floats and X.ndim == 2
            and X.shape[0] >= max(min_samples, 1) and X.shape[1] >= 1):
        return False
    if y is not None and not (type(y) is np.ndarray and y.dtype in floats
                              and (y.ndim == 1 or (multi_output and y.ndim == 2))
                              and y.shape[0] == X.shape[0] and y.size > 0):
        return False
    with np.errstate(all="ignore"):  # a sum that overflows sends them to the full check
        return bool(np.isfinite(X.sum()) and (y is None or np.isfinite(y.sum())))


class NeuroMLEstimator(BaseEstimator):
    """Base class of neuroml estimators: a scikit-learn estimator over a torch engine.

    Subclasses declare ``_parameter_constraints`` (parameter name -> list of accepted
    constraints, see :mod:`neuroml._validation`) and, when they hold torch modules,
    list the attribute names in ``_module_attributes`` and implement ``_build_module``
    so :func:`load` can rebuild them from fitted attributes.
    """

    _parameter_constraints: ClassVar[dict] = {}
    _module_attributes: ClassVar[tuple[str, ...]] = ()
    # fitted attributes that a subclass makes on first use (in __getattr__)
    _lazy_attributes: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """scikit-learn's parameter names (from the signature of ``__init__``), read once
        per class: ``inspect.signature`` costs ~25 us on every ``get_params``."""
        return list(_param_names(cls))

    def _unfitted_copies(self, n: int) -> list:
        """``n`` unfitted copies of this estimator, as ``sklearn.base.clone`` makes them.

        One clone, then copies of its attribute dict with container values copied
        (a clone costs ~50 us, a copy ~3 us; batched solvers hand out one fitted copy
        per time bin).
        """
        from sklearn.base import clone

        proto = clone(self)
        cls, state = type(proto), proto.__dict__
        copies = []
        for _ in range(n):
            est = cls.__new__(cls)
            est.__dict__ = {k: copy.deepcopy(v) if isinstance(v, dict | list | set | np.ndarray)
                            else v for k, v in state.items()}
            copies.append(est)
        return copies

    # ------------------------------------------------------------------ validation
    def _validate_params(self) -> None:
        """Check every constructor parameter; raise ParameterError naming the bad one."""
        validate_params(self.get_params(deep=False), self._parameter_constraints, type(self).__name__)

    def _resolve_device(self) -> torch.device:
        """Resolve ``self.device`` ("auto" -> CUDA if present) into ``self.device_``."""
        self.device_ = resolve_device(getattr(self, "device", "auto"))
        return self.device_

    def _validate_X(self, X, y=None, *, reset: bool, ndim: int = 2, y_numeric: bool = False,
                    multi_output: bool = False, ensure_min_samples: int = 1):
        """Validate ``X`` (and ``y``) and move ``X`` to ``device_``.

        NumPy and DataArray inputs go through scikit-learn's ``validate_data`` (finite
        values, 2-D or ``ndim``-D, ``n_features_in_`` bookkeeping, its messages), except
        finite float arrays of the right shapes (:func:`_plain`), which it would pass
        unchanged: those get the same bookkeeping here; tensors are checked on their
        device without a round trip to the host.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor
            ``(n_samples, n_features)``, or ``(trial, time, unit)`` when ``ndim=3``.
        y : array-like, default=None
        reset : bool
            True in ``fit`` (records ``n_features_in_``), False afterwards (checks it).
        ndim : {2, 3}, default=2

        Returns
        -------
        X_t : torch.Tensor on ``device_`` (float32 stays float32, else float64)
        y : ndarray or None
        info : InputInfo
        """
        info = inspect_input(X)
        if y is None and reset and self.__sklearn_tags__().target_tags.required:
            raise ParameterError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        if not hasattr(self, "device_"):
            self._resolve_device()
        if info.kind == "torch":
            Xt = X
            if not torch.is_floating_point(Xt):
                Xt = Xt.to(torch.float64)
            if Xt.ndim != ndim:
                raise ParameterError(
                    f"{type(self).__name__} expects a {ndim}-D tensor; got shape {tuple(Xt.shape)}."
                )
            if Xt.shape[0] < ensure_min_samples:
                raise ParameterError(
                    f"Found array with {Xt.shape[0]} sample(s) (shape={tuple(Xt.shape)}) while a "
                    f"minimum of {ensure_min_samples} is required by {type(self).__name__}."
                )
            if not bool(torch.isfinite(Xt).all()):
                raise ParameterError(f"Input X contains NaN or infinity ({type(self).__name__}).")
            self._check_n_features(Xt.shape[-1], reset)
            if Xt.dtype not in (torch.float32, torch.float64):
                Xt = Xt.to(torch.float32)
            if y is not None:
                y = to_numpy(y) if isinstance(y, torch.Tensor) else y
                y = self._validate_y(y, Xt.shape[0], y_numeric, multi_output)
            return Xt.to(self.device_), y, info
        Xa = X.values if hasattr(X, "values") and info.kind == "xarray" else X
        if info.kind == "xarray" and X.ndim != ndim:
            raise ParameterError(
                f"{type(self).__name__} expects a {ndim}-D DataArray; got dims {X.dims}."
            )
        kwargs = dict(dtype=[np.float64, np.float32], allow_nd=ndim > 2,
                      ensure_min_samples=ensure_min_samples)
        if ndim > 2:
            # validate_data would count features along axis 1 (time for (trial, time,
            # unit) input); check the values here and count units (the last axis) below.
            from sklearn.utils.validation import check_array, check_X_y

            try:
                if y is None:
                    Xa = check_array(Xa, **kwargs)
                else:
                    Xa, y = check_X_y(Xa, y, y_numeric=y_numeric, multi_output=multi_output,
                                      **kwargs)
            except ValueError as err:
                self._raise_nonfinite_trials(Xa, err)
                raise
        elif _plain(Xa, y, ensure_min_samples, multi_output) and \
                (reset or not hasattr(self, "feature_names_in_")):
            # finite float arrays of the right shapes: what validate_data would check and
            # record, without its 0.2-0.7 ms of Python per call (anything else goes through
            # it, for its conversions and messages)
            self._check_n_features(Xa.shape[1], reset)
            if reset:
                self.__dict__.pop("feature_names_in_", None)
        elif y is None:
            Xa = validate_data(self, Xa, reset=reset, **kwargs)
        else:
            Xa, y = validate_data(self, Xa, y, reset=reset, y_numeric=y_numeric,
                                  multi_output=multi_output, **kwargs)
        if Xa.ndim != ndim:
            raise ParameterError(
                f"{type(self).__name__} expects {ndim}-D input"
                + (" (trial, time, unit)" if ndim == 3 else " (n_samples, n_features)")
                + f"; got an array of shape {Xa.shape}."
            )
        if ndim > 2:
            self._check_n_features(Xa.shape[-1], reset)
        return to_tensor(Xa, self.device_), y, info

    def _raise_nonfinite_trials(self, X, err: ValueError) -> None:
        """Say which trials of ``(trial, ...)`` input hold NaN or infinity (when that is
        what ``err`` is about) and what to do about them."""
        try:
            Xf = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            return
        finite = np.isfinite(Xf)
        if finite.all():
            return
        bad = ~finite.reshape(Xf.shape[0], -1).all(axis=1)
        what = "NaN" if np.isnan(Xf).any() else "infinity"
        raise ParameterError(
            f"Input X contains {what} in {int(bad.sum())} of {bad.size} trials (the first: "
            f"trial index {int(np.flatnonzero(bad)[0])}); {type(self).__name__} needs finite "
            "values. Epochs of a signal from Recording.epochs() are NaN where the window "
            "leaves the recording: keep the complete trials (e.g. X.dropna('trial')) or fill "
            "the gaps first."
        ) from err

    def _validate_y(self, y, n_samples, y_numeric, multi_output):
        from sklearn.utils.validation import check_array, column_or_1d

        if multi_output:
            y = check_array(y, ensure_2d=False, dtype=np.float64 if y_numeric else None)
        else:
            y = column_or_1d(y, warn=True)
            if y_numeric:  # NaN / inf targets get the same message as NumPy input
                y = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
        if y.shape[0] != n_samples:
            raise ParameterError(f"X has {n_samples} samples but y has {y.shape[0]}.")
        return y

    def _check_n_features(self, n_features: int, reset: bool) -> None:
        if reset:
            self.n_features_in_ = int(n_features)
        elif n_features != self.n_features_in_:
            raise ParameterError(
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _check_fitted(self) -> None:
        """Raise neuroml's NotFittedError (also scikit-learn's) before fit."""
        try:
            check_is_fitted(self)
        except Exception as err:
            if isinstance(err, NotFittedError):
                raise
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            ) from None

    @staticmethod
    def _wrap(info: InputInfo, values, feature_dim, feature_coords=None, *, device=None, **kwargs):
        """Return ``values`` in the type of the input described by ``info``."""
        return info.wrap(values, feature_dim, feature_coords, estimator_device=device, **kwargs)

    # ------------------------------------------------------------------ pickling
    def __getstate__(self):
        # A copy: on Python >= 3.11 BaseEstimator returns the live __dict__, and the
        # CPU copies below must not replace the estimator's own modules.
        state = dict(super().__getstate__())
        for key, value in list(state.items()):
            if isinstance(value, torch.nn.Module):
                state[key] = copy.deepcopy(value).to("cpu")
            elif isinstance(value, torch.Tensor):
                state[key] = value.detach().cpu()
        if isinstance(state.get("device_"), torch.device):
            state["device_"] = str(state["device_"])
        return state

    def __setstate__(self, state):
        dev = state.get("device_")
        if isinstance(dev, str):
            try:
                state["device_"] = resolve_device(dev)
            except NeuroMLError:
                state["device_"] = torch.device("cpu")
        super().__setstate__(state)
        dev = getattr(self, "device_", None)
        if isinstance(dev, torch.device) and dev.type != "cpu":
            for key in self._module_attributes:
                if isinstance(getattr(self, key, None), torch.nn.Module):
                    setattr(self, key, getattr(self, key).to(dev))

    # ------------------------------------------------------------------ save / load
    def _build_module(self) -> dict[str, torch.nn.Module]:  # pragma: no cover - overridden
        """Fresh torch modules for ``_module_attributes``, shaped by the fitted attributes."""
        raise NeuroMLError(f"{type(self).__name__} does not define _build_module")

    def save(self, path) -> Path:
        """Save the fitted estimator to ``path`` in a format that cannot run code on load.

        Parameters are stored as JSON, arrays and module weights as tensors in a
        ``torch.save`` archive that :func:`load` reads with ``weights_only=True``.
        The write is atomic (temporary file, then rename).

        Parameters
        ----------
        path : str or Path

        Returns
        -------
        Path
        """
        self._check_fitted()
        path = Path(path)
        blobs: list[torch.Tensor] = []
        payload: dict[str, Any] = {
            "format": _FORMAT,
            "neuroml_version": __version__,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": json.dumps(_to_json(self.get_params(deep=False), blobs)),
        }
        payload.update(_fitted_state(self, blobs))
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
