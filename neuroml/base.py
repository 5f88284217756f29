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
- :meth:`NeuroMLEstimator.save` / :func:`load` use ``torch.save`` /
  ``torch.load(weights_only=True)`` with parameters as JSON, a format that cannot run
  code on load (the archive's layout: :mod:`neuroml._serialization`). A fitted
  scikit-learn estimator cannot be saved (a clear :class:`~neuroml.errors.ParameterError`).
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from ._serialization import load, save_estimator
from ._validation import validate_params
from .device import InputInfo, inspect_input, resolve_device, to_numpy, to_tensor
from .errors import NeuroMLError, NotFittedError, ParameterError

__all__ = ["NeuroMLEstimator", "load"]


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
        return save_estimator(self, path)

