"""Validation and conversion of trial-structured ``(trial, time, unit)`` input.

Sequence estimators (recurrent and convolutional decoders, Wiener and Kalman baselines)
take ``(trial, time, unit)`` input as a NumPy array, an xarray ``DataArray`` (e.g. from
``Recording.epochs``) or a torch tensor. Trials of different lengths are NaN-padded at
the end: a time bin where every unit is NaN, from some bin to the end of the trial, is
padding. Three functions cover the round trip:

- :func:`check_sequences` validates ``X`` and returns :class:`Sequences`: the values on
  the device with padded steps zero-filled, each trial's length, a ``(trial, time)``
  validity mask and what is needed to return outputs in the input's type.
- :func:`check_targets` validates targets against those sequences: per time bin
  (``output="sequence"``: ``(trial, time)`` or ``(trial, time, k)``) or one per trial
  (``output="last"``: ``(trial,)`` or ``(trial, k)``); a str names a trial coordinate of
  a DataArray ``X``.
- :func:`wrap_outputs` returns predictions in the input's type (NumPy, DataArray with the
  trial and time coordinates kept, or a tensor on the estimator's device), NaN at padded
  steps.

One continuous ``(time, unit)`` recording with a ``(time,)`` or ``(time, k)`` target is
accepted as a single trial with ``check_sequences(X, continuous=True)``; its outputs come
back without the trial axis.

Example
-------
>>> import numpy as np, torch
>>> X = np.ones((2, 4, 3)); X[1, 2:] = np.nan          # trial 1 has 2 valid bins
>>> seq = check_sequences(X, owner="Demo", device=torch.device("cpu"))
>>> seq.lengths.tolist(), seq.mask.sum().item()
([4, 2], 6)
>>> y = check_targets(np.zeros((2, 4)), seq, output="sequence", owner="Demo")
>>> y.values.shape, y.squeeze
((2, 4, 1), True)
>>> wrap_outputs(torch.zeros(2, 4), seq, output="sequence")[1].tolist()
[0.0, 0.0, nan, nan]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import xarray as xr

from ..decoding._coords import coordinate
from ..device import to_numpy, to_tensor
from ..errors import ParameterError

__all__ = ["Sequences", "Targets", "check_sequences", "check_targets", "wrap_outputs"]

_SHAPE = "(trial, time, unit)"


@dataclass
class Sequences:
    """Validated trial-structured input (see :func:`check_sequences`).

    Attributes
    ----------
    values : torch.Tensor of shape (n_trials, n_times, n_units)
        On the requested device, padded steps set to 0.
    lengths : ndarray of int64, shape (n_trials,)
        Valid time bins of each trial (padding starts at ``lengths[i]``).
    mask : torch.Tensor of bool, shape (n_trials, n_times)
        True at valid steps, on the device of ``values``.
    kind : {"numpy", "xarray", "torch"}
        Type of the input, for :func:`wrap_outputs`.
    continuous : bool
        The input was one continuous ``(time, unit)`` recording, taken as one trial.
    trial_dim, time_dim : str
        Dimension names (a DataArray's own, else ``"trial"`` and ``"time"``).
    trial_coords, time_coords : dict
        A DataArray's coordinates along the trial (resp. time) dimension only, as
        ``name -> (dims, values)``; empty for other inputs.
    time_index : ndarray or None
        The time coordinate of a DataArray (``time_coords[time_dim]``), if it has one.
    """

    values: torch.Tensor
    lengths: np.ndarray
    mask: torch.Tensor
    kind: str = "numpy"
    continuous: bool = False
    trial_dim: str = "trial"
    time_dim: str = "time"
    trial_coords: dict = field(default_factory=dict)
    time_coords: dict = field(default_factory=dict)
    time_index: Any = None

    @property
    def n_trials(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_times(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_units(self) -> int:
        return int(self.values.shape[2])

    @property
    def padded(self) -> bool:
        """Whether any trial is shorter than ``n_times``."""
        return bool((self.lengths < self.n_times).any())


@dataclass
class Targets:
    """Validated targets (see :func:`check_targets`).

    Attributes
    ----------
    values : ndarray
        ``output="sequence"``: shape (n_trials, n_times, n_outputs) for numeric targets,
        (n_trials, n_times) for labels; ``output="last"``: (n_trials, n_outputs) for
        numeric targets, (n_trials,) for labels. Numeric values at padded steps are 0.
    squeeze : bool
        The target had no output axis (one value per step or per trial).
    dim : str
        Name of the output axis (a DataArray target's last dimension, else ``"output"``).
    coords : ndarray or None
        Coordinates of the output axis, if the target was a DataArray that had them.
    """

    values: np.ndarray
    squeeze: bool
    dim: str = "output"
    coords: Any = None


def _three_d_error(owner: str, what: str) -> ParameterError:
    return ParameterError(
        f"{owner} needs trial-structured input of shape {_SHAPE}, e.g. the DataArray from "
        f"Recording.epochs(); got {what}. Trials of different lengths are NaN-padded at "
        "the end."
    )


def check_sequences(X, *, owner: str, device: torch.device, dtype: torch.dtype | None = None,
                    continuous: bool = False, min_trials: int = 1) -> Sequences:
    """Validate ``(trial, time, unit)`` input with NaN end-padding.

    Parameters
    ----------
    X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)
        Trials shorter than ``n_times`` end in padded steps where every unit is NaN.
    owner : str
        Name of the estimator, for error messages.
    device : torch.device
        Where ``values`` and ``mask`` go.
    dtype : torch.dtype, default=None
        Precision of ``values``; None keeps float32 and makes anything else float64.
    continuous : bool, default=False
        Also accept one continuous ``(n_times, n_units)`` recording, taken as one trial
        (``Sequences.continuous`` is then True and outputs lose the trial axis).
    min_trials : int, default=1
        Fewest trials allowed.

    Returns
    -------
    Sequences

    Raises
    ------
    ParameterError
        Input that is not 3-D (naming the expected ``(trial, time, unit)`` shape), empty,
        not numeric, with infinity, with a trial that is all NaN, or with NaN in the middle
        of a trial (before its last valid step, or in some units only).
    """
    is_da = isinstance(X, xr.DataArray)
    if isinstance(X, torch.Tensor):
        kind, arr = "torch", X.detach()
    else:
        kind = "xarray" if is_da else "numpy"
        try:
            arr = np.asarray(X.values if is_da else X)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{owner} could not read X as an array: {err}") from None
    what = (f"a DataArray with dims {X.dims}" if is_da
            else f"{arr.ndim}-D input of shape {tuple(arr.shape)}")
    was_continuous = continuous and arr.ndim == 2
    if was_continuous:
        arr = arr[None]
    elif arr.ndim != 3:
        if continuous:
            raise ParameterError(
                f"{owner} needs trial-structured input of shape {_SHAPE} or one continuous "
                f"recording of shape (time, unit); got {what}.")
        raise _three_d_error(owner, what)
    if any(s == 0 for s in arr.shape):
        raise ParameterError(
            f"{owner} needs at least one trial, time bin and unit; got X of shape "
            f"{tuple(arr.shape)[1:] if was_continuous else tuple(arr.shape)}.")
    if arr.shape[0] < min_trials:
        raise ParameterError(
            f"{owner} needs at least {min_trials} trials; got {arr.shape[0]}.")
    if kind == "torch":
        if arr.is_complex() or arr.dtype == torch.bool:
            raise ParameterError(f"{owner} needs real-valued X; got a tensor of {arr.dtype}.")
        t = arr
    else:
        if arr.dtype.kind not in "biuf":
            try:
                arr = arr.astype(np.float64)
            except (TypeError, ValueError):
                raise ParameterError(
                    f"{owner} needs numeric X; got an array of dtype {arr.dtype}.") from None
        t = to_tensor(arr, device)
    if dtype is None:
        dtype = torch.float32 if t.dtype == torch.float32 else torch.float64
    t = t.to(device=device, dtype=dtype)
    lengths, mask = _padding(t, owner)
    if not mask.all():
        t = torch.where(mask[..., None], t, torch.zeros((), dtype=t.dtype, device=t.device))
    seq = Sequences(t, lengths, mask, kind=kind, continuous=was_continuous)
    if is_da:
        dims = X.dims
        if was_continuous:
            seq.time_dim = str(dims[0])
            seq.time_coords = {n: (c.dims, np.asarray(c.values)) for n, c in X.coords.items()
                               if c.dims == (dims[0],)}
        else:
            seq.trial_dim, seq.time_dim = str(dims[0]), str(dims[1])
            seq.trial_coords = {n: (c.dims, np.asarray(c.values)) for n, c in X.coords.items()
                                if c.dims == (dims[0],)}
            seq.time_coords = {n: (c.dims, np.asarray(c.values)) for n, c in X.coords.items()
                               if c.dims == (dims[1],)}
        if seq.time_dim in seq.time_coords:
            seq.time_index = seq.time_coords[seq.time_dim][1]
    return seq


def _padding(t: torch.Tensor, owner: str) -> tuple[np.ndarray, torch.Tensor]:
    """Lengths and validity mask of NaN-end-padded ``(trial, time, unit)`` values."""
    n_trials, n_times, _ = t.shape
    nan = torch.isnan(t)
    step_pad = nan.all(-1)                                # every unit NaN
    steps = torch.arange(1, n_times + 1, device=t.device)
    lengths_t = torch.where(step_pad, 0, steps).amax(-1)  # last non-padded step + 1
    mask = steps[None] <= lengths_t[:, None]
    bad_value = ~torch.isfinite(t) & mask[..., None]      # NaN or inf before the end
    summary = torch.stack([lengths_t.min(), bad_value.any().to(lengths_t.dtype)]).cpu()
    lengths = lengths_t.cpu().numpy().astype(np.int64)
    if int(summary[0]) == 0:
        empty = np.flatnonzero(lengths == 0)
        raise ParameterError(
            f"X has {empty.size} trial(s) that are all NaN (trial index "
            f"{', '.join(str(i) for i in empty[:5])}{' ...' if empty.size > 5 else ''}); "
            f"{owner} needs at least one valid time bin per trial: drop those trials "
            "(e.g. X.dropna('trial', how='all')).")
    if int(summary[1]):
        bad = to_numpy(bad_value)
        trial, step, unit = (int(v[0]) for v in np.nonzero(bad))
        value = float(to_numpy(t[trial, step, unit]))
        if np.isnan(value):
            n_bad = int(bad.any(axis=(1, 2)).sum())
            raise ParameterError(
                f"X has NaN in the middle of {n_bad} trial(s) (the first: trial index "
                f"{trial}, time bin {step}, unit {unit}, within its {int(lengths[trial])} "
                f"valid bins). {owner} reads NaN only as end padding: every unit NaN from "
                "a trial's last valid bin to the end. Interpolate or fill the gaps first.")
        raise ParameterError(
            f"X contains infinity (trial index {trial}, time bin {step}, unit {unit}); "
            f"{owner} needs finite values.")
    return lengths, mask


def check_targets(y, seq: Sequences, *, output: str, owner: str, X=None,
                  numeric: bool = True) -> Targets:
    """Validate targets for ``seq`` (from :func:`check_sequences`).

    Parameters
    ----------
    y : array-like, DataArray, torch.Tensor or str
        ``output="sequence"``: ``(n_trials, n_times)`` or ``(n_trials, n_times, k)``
        (``(n_times,)`` or ``(n_times, k)`` for a continuous recording); ``output="last"``:
        ``(n_trials,)`` or ``(n_trials, k)``. A str names a trial coordinate of the
        DataArray ``X`` (for ``output="sequence"`` its value holds at every step of the
        trial). Values at padded steps are ignored (they may be NaN).
    seq : Sequences
    output : {"sequence", "last"}
    owner : str
        Name of the estimator, for error messages.
    X : DataArray, default=None
        The input, needed when ``y`` is a str.
    numeric : bool, default=True
        Continuous targets (float, finite at valid steps, any number of outputs); False
        for class labels (one label per step or per trial).

    Returns
    -------
    Targets

    Raises
    ------
    ParameterError
        When ``y`` does not match the trials or time bins of ``X``, has the wrong number
        of dimensions, is not finite at valid steps, or names no trial coordinate.
    """
    dim, coords = "output", None
    per_trial = output == "last"
    if isinstance(y, str):
        y = np.asarray(coordinate(X, y, "y"))
        if not per_trial:
            y = np.repeat(y[:, None], seq.n_times, axis=1)
    elif isinstance(y, xr.DataArray):
        _check_target_coords(y, X, seq, per_trial, owner)
        extra = y.ndim - (1 if per_trial or seq.continuous else 2)
        if extra == 1:
            dim = str(y.dims[-1])
            if dim in y.coords:
                coords = np.asarray(y.coords[dim].values)
        y = np.asarray(y.values)
    else:
        y = to_numpy(y)
    if seq.continuous and not per_trial:
        y = y[None]
    base = 1 if per_trial else 2
    shape_name = ("(trial,) or (trial, k)" if per_trial else
                  "(time,) or (time, k)" if seq.continuous else
                  "(trial, time) or (trial, time, k)")
    if not numeric:
        shape_name = shape_name.split(" or ")[0]
    max_ndim = base + (1 if numeric else 0)
    if y.ndim < base or y.ndim > max_ndim:
        hint = (" Per-trial targets need output='last'." if not per_trial and y.ndim == 1
                else " Per-step targets need output='sequence'." if per_trial and y.ndim >= 2
                else "")
        raise ParameterError(
            f"{owner} with output={output!r} needs targets of shape {shape_name}; got y of "
            f"shape {tuple(y.shape[1:] if seq.continuous and not per_trial else y.shape)}."
            + hint)
    if y.shape[0] != seq.n_trials:
        raise ParameterError(
            f"y has {y.shape[0]} trials but X has {seq.n_trials}; {owner} needs one target "
            f"{'per trial' if per_trial else 'sequence per trial'}.")
    if not per_trial and y.shape[1] != seq.n_times:
        raise ParameterError(
            f"y has {y.shape[1]} time bins but X has {seq.n_times}; {owner} needs a target "
            "at every time bin of X (NaN at padded steps is allowed).")
    if not numeric:
        return Targets(y, squeeze=True, dim=dim, coords=coords)
    squeeze = y.ndim == base
    if squeeze:
        y = y[..., None]
    if y.shape[-1] == 0:
        raise ParameterError(f"{owner} needs at least one target; got y of shape {y.shape}.")
    try:
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParameterError(
            f"{owner} needs numeric targets; got y of dtype {y.dtype}.") from None
    valid = np.ones(y.shape[0], bool) if per_trial else to_numpy(seq.mask)
    bad = ~np.isfinite(y).all(-1) & valid
    if bad.any():
        where = np.argwhere(bad)[0]
        loc = (f"trial index {where[0]}" if per_trial
               else f"trial index {where[0]}, time bin {where[1]}")
        raise ParameterError(
            f"y contains NaN or infinity at {int(bad.sum())} valid step(s) (the first: "
            f"{loc}); {owner} needs finite targets wherever X is not padding.")
    if not per_trial and not valid.all():
        y = np.where(valid[..., None], y, 0.0)
    return Targets(y, squeeze=squeeze, dim=dim, coords=coords)


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "biufc":
        return bool(np.allclose(a, b.astype(a.dtype), rtol=1e-9, atol=1e-12))
    return bool(np.array_equal(a, b))


def _check_target_coords(y: xr.DataArray, X, seq: Sequences, per_trial: bool, owner: str):
    """A DataArray target's trial / time index coordinates must equal those of X."""
    if not isinstance(X, xr.DataArray):
        return
    pairs = [] if seq.continuous else [(0, seq.trial_dim, "trials")]
    if not per_trial:
        pairs.append((0 if seq.continuous else 1, seq.time_dim, "time bins"))
    for axis, xdim, what in pairs:
        ydim = y.dims[axis] if axis < y.ndim else None
        if ydim is None or ydim not in y.coords or xdim not in X.coords:
            continue
        if not _same(X.coords[xdim].values, y.coords[ydim].values):
            raise ParameterError(
                f"The {what} of y (coordinate {ydim!r}) do not match those of X (coordinate "
                f"{xdim!r}); {owner} needs targets for the same {what} (align them first, "
                "e.g. with xarray.align).")


def wrap_outputs(values, seq: Sequences, *, output: str, feature_dim: str | None = None,
                 feature_coords=None, device: torch.device | None = None,
                 name: str | None = None):
    """Return predictions in the type of the input that gave ``seq``.

    Parameters
    ----------
    values : torch.Tensor or ndarray
        ``output="sequence"``: ``(n_trials, n_times)`` or ``(n_trials, n_times, k)``;
        ``output="last"``: ``(n_trials,)`` or ``(n_trials, k)``.
    seq : Sequences
    output : {"sequence", "last"}
    feature_dim : str, default=None
        Name of the trailing ``k`` axis of a DataArray output (``"output"``, ``"class"``).
    feature_coords : array-like, default=None
        Its coordinates.
    device : torch.device, default=None
        Device of tensor outputs (the estimator's ``device_``).
    name : str, default=None
        Name of a DataArray output.

    Returns
    -------
    ndarray, DataArray or torch.Tensor
        Padded steps are NaN (labels that are not floats become float, or object for
        non-numeric labels, where there is padding). A DataArray keeps the trial and time
        coordinates of the input. A continuous recording's output has no trial axis.
    """
    sequence = output == "sequence"
    if sequence and seq.padded:
        values = _nan_padded(values, seq)
    if seq.continuous and sequence:
        values = values[0]
    if seq.kind == "torch":
        if isinstance(values, torch.Tensor):
            return values.to(device) if device is not None else values
        values = np.asarray(values)
        if values.dtype.kind in "biuf":
            return torch.as_tensor(values, device=device)
        return values
    arr = to_numpy(values)
    if seq.kind == "numpy":
        return arr
    dims = [] if seq.continuous else [seq.trial_dim]
    coords = dict(seq.trial_coords)
    if sequence:
        dims.append(seq.time_dim)
        coords.update(seq.time_coords)
    if arr.ndim > len(dims):
        dims.append(feature_dim or "output")
        if feature_coords is not None:
            coords[dims[-1]] = np.asarray(feature_coords)
    return xr.DataArray(arr, dims=dims, coords=coords, name=name)


def _nan_padded(values, seq: Sequences):
    """``values`` (trial, time[, k]) with NaN at padded steps."""
    if isinstance(values, torch.Tensor):
        mask = seq.mask.to(values.device)
        if values.ndim == 3:
            mask = mask[..., None]
        if not values.is_floating_point():
            values = values.to(torch.float64)
        return torch.where(mask, values, torch.full((), float("nan"), dtype=values.dtype,
                                                    device=values.device))
    values = np.asarray(values)
    mask = to_numpy(seq.mask)
    if values.ndim == 3:
        mask = mask[..., None]
    if values.dtype.kind in "biu":
        values = values.astype(np.float64)
    elif values.dtype.kind != "f":
        values = values.astype(object)
    return np.where(mask, values, np.nan)
