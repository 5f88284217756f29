"""Input handling shared by the representation estimators.

Every estimator here takes ``(n_samples, n_features)`` input (NumPy, DataArray or tensor)
or trial-structured ``(trial, time, unit)`` input. Trial input is flattened to one
sample per time bin for the networks; outputs are reshaped back, so a DataArray comes
back with the same ``trial`` and ``time`` coordinates (and every trial coordinate such
as ``condition``) and the feature dimension renamed.

Networks train in float32; float64 inputs are evaluated with a float64 copy of the
fitted network so outputs keep the input's dtype.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral

import numpy as np
import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin

from ..base import NeuroMLEstimator
from ..device import InputInfo, full_float32, inspect_input, to_numpy
from ..errors import ParameterError

#: Rows evaluated per forward pass at inference (bounds memory on large inputs).
_CHUNK = 65536

#: DataArray attrs that describe the sample axes, kept on outputs (as neuroml.PCA does).
_SAMPLE_ATTRS = ("bin_size", "align_to", "window", "start", "stop")


class _Flat:
    """A validated input flattened to ``(n_samples, n_features)``.

    Attributes
    ----------
    X : torch.Tensor
        On the estimator's device, in the input's dtype (float32 or float64).
    info : InputInfo
        How to return outputs in the input's type.
    shape : tuple of int
        Leading (sample) shape of the input: ``(n_samples,)`` or ``(n_trials, n_time)``.
    """

    def __init__(self, X: torch.Tensor, info: InputInfo, shape: tuple[int, ...], attrs=None):
        self.X = X
        self.info = info
        self.shape = shape
        self.attrs = {k: v for k, v in (attrs or {}).items() if k in _SAMPLE_ATTRS}

    @property
    def trials(self) -> bool:
        return len(self.shape) == 2


class _RepresentationBase(ClassNamePrefixFeaturesOutMixin, TransformerMixin, NeuroMLEstimator):
    """Shared plumbing: validation, flattening, float64 inference, trial splits."""

    _module_attributes = ("module_",)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    @property
    def _n_features_out(self) -> int:
        return int(self.n_latents)

    # ------------------------------------------------------------------ input
    def _check_hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        ok = isinstance(sizes, tuple | list) and all(
            isinstance(h, Integral) and not isinstance(h, bool) and h >= 1 for h in sizes
        )
        if not ok:
            raise ParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be a tuple "
                f"of ints >= 1 (e.g. (64,), or () for a linear network). Got {sizes!r} instead."
            )
        return tuple(int(h) for h in sizes)

    def _flatten(self, X, *, reset: bool) -> _Flat:
        """Validate ``X`` (2-D or ``(trial, time, unit)``) and flatten it to samples."""
        info = inspect_input(X)
        ndim = getattr(X, "ndim", None)
        if ndim == 3:
            if info.kind == "torch":
                arr = X
            else:
                arr = np.asarray(X.values if info.kind == "xarray" else X)
            lead = tuple(int(s) for s in arr.shape[:2])
            if 0 in lead:
                raise ParameterError(
                    f"{type(self).__name__} got (trial, time, unit) input of shape "
                    f"{tuple(arr.shape)}: it needs at least one trial and one time bin."
                )
            flat = arr.reshape(-1, arr.shape[-1])
            Xt, _, _ = self._validate_X(flat, reset=reset, ndim=2)
            if reset:
                self._record_features(X, info)
            return _Flat(Xt, info, lead, getattr(X, "attrs", None))
        if info.kind == "xarray" and ndim != 2:
            raise ParameterError(
                f"{type(self).__name__} expects a 2-D (sample, feature) or 3-D "
                f"(trial, time, unit) DataArray; got dims {X.dims}."
            )
        Xt, _, _ = self._validate_X(X, reset=reset, ndim=2)
        if reset:
            self._record_features(X, info)
        return _Flat(Xt, info, (int(Xt.shape[0]),), getattr(X, "attrs", None))

    def _record_features(self, X, info: InputInfo) -> None:
        """Remember the feature dimension's name and labels (for inverse_transform)."""
        self.feature_dim_ = "feature"
        self.feature_coords_ = None
        if info.kind == "xarray":
            name = X.dims[-1]
            self.feature_dim_ = str(name)
            if name in X.coords:
                self.feature_coords_ = np.asarray(X[name].values)

    def _output(self, flat: _Flat, values: torch.Tensor, feature_dim: str | None,
                feature_coords=None):
        """Reshape per-sample outputs back to the input's sample shape and type."""
        values = values.reshape(*flat.shape, values.shape[-1])
        out = self._wrap(flat.info, values, feature_dim, feature_coords, device=self.device_)
        if flat.info.kind == "xarray":
            out.attrs.update(flat.attrs)
        return out

    # ------------------------------------------------------------------ modules
    def _inference_module(self, dtype: torch.dtype) -> torch.nn.Module:
        """The fitted module in ``dtype`` (a float64 copy for float64 inputs)."""
        module = self.module_
        module.eval()
        if dtype == torch.float64:
            module = copy.deepcopy(module).double()
        return module

    @torch.no_grad()
    def _apply(self, fn, X: torch.Tensor) -> torch.Tensor:
        """``fn(module, chunk)`` over ``X`` in chunks, in ``X``'s dtype."""
        module = self._inference_module(X.dtype)
        with full_float32():
            outs = [fn(module, X[i : i + _CHUNK]) for i in range(0, X.shape[0], _CHUNK)]
        return torch.cat(outs, 0) if outs else fn(module, X)

    # ------------------------------------------------------------------ training split
    def _trial_split(self, shape: tuple[int, ...], seed: int):
        """Whole trials held out for validation (None: let the Trainer split samples)."""
        if len(shape) != 2:
            return None
        n_trials, n_time = shape
        n_val = int(math.floor(self.validation_fraction * n_trials))
        n_val = min(n_val, n_trials - 1)
        gen = torch.Generator().manual_seed(seed)
        perm = torch.randperm(n_trials, generator=gen)
        val_trials, train_trials = perm[:n_val], perm[n_val:]
        t = torch.arange(n_time)
        def rows(trials):
            return (trials[:, None] * n_time + t[None, :]).reshape(-1).sort().values
        return rows(train_trials), rows(val_trials)

    def _store_fitted(self, module: torch.nn.Module, trainer, Xf: torch.Tensor, encode) -> None:
        """Keep the trained module and the latent statistics traversals start from.

        ``encode(module, x)`` gives the latents (posterior means for the VAE).
        """
        self.module_ = module.eval()
        self.best_epoch_ = int(trainer.best_epoch_)
        Z = to_numpy(self._apply(encode, Xf).double())
        self.latent_mean_ = Z.mean(0)
        self.latent_std_ = Z.std(0)

    def _trainer_kwargs(self, seed: int) -> dict:
        return dict(max_epochs=self.max_epochs, batch_size=self.batch_size, lr=self.lr,
                    weight_decay=self.weight_decay, optimizer=self.optimizer,
                    validation_fraction=self.validation_fraction, patience=self.patience,
                    verbose=self.verbose, seed=seed)


def check_latents(estimator, Z, owner: str):
    """Validate latent input ``Z`` for a decoder: returns (tensor, info, lead shape)."""
    info = inspect_input(Z)
    if info.kind == "torch":
        arr = Z
        if not torch.is_floating_point(arr):
            arr = arr.to(torch.float64)
    else:
        arr = np.asarray(Z.values if info.kind == "xarray" else Z)
        if arr.dtype.kind not in "biuf":
            raise ParameterError(f"{owner} needs numeric latents; got dtype {arr.dtype}.")
        if arr.dtype != np.float32:
            arr = arr.astype(np.float64)
        arr = torch.from_numpy(np.ascontiguousarray(arr))
    if arr.ndim not in (2, 3) or arr.shape[-1] != estimator.n_latents:
        raise ParameterError(
            f"{owner} expects latents of shape (n_samples, {estimator.n_latents}) or "
            f"(trial, time, {estimator.n_latents}); got shape {tuple(arr.shape)}."
        )
    if not bool(torch.isfinite(arr).all()):
        raise ParameterError(f"{owner}: the latents contain NaN or infinity.")
    lead = tuple(int(s) for s in arr.shape[:-1])
    return arr.reshape(-1, arr.shape[-1]).to(estimator.device_), info, lead
