"""Stimulus representations for temporal-difference models (Ludvig, Sutton & Kehoe 2008).

A TD model predicts the value ``V(t) = w . x(t)`` from a feature vector ``x(t)`` that
describes how long ago each stimulus began. The three representations of Ludvig, Sutton
& Kehoe (2008, *Neural Computation* 20:3034) are built here from stimulus onsets:

- :func:`complete_serial_compound` (CSC, a tapped delay line): one feature per time
  step since onset, ``x_k(t) = 1`` when ``t - onset == k``;
- :func:`presence`: one feature per stimulus, ``1`` while the stimulus is on;
- :func:`microstimulus`: a decaying memory trace ``y(t) = trace_decay ** (t - onset)``
  read out by ``m`` Gaussian basis functions of the trace height,
  ``x_i(t) = y(t) * exp(-(y(t) - i/m)^2 / (2 width^2)) / sqrt(2 pi)``, ``i = 1..m``
  (the paper's equation, as in the authors' simulation code: the basis is a Gaussian
  density without the ``1/width`` factor, scaled by the trace height itself).

Conventions shared by all three. Onsets are the non-zero entries of a ``(trial, time)``
or ``(trial, time, stimulus)`` array; time is measured in bins from the most recent
onset of the same stimulus in the same trial (a new onset restarts the representation;
before the first onset every feature is 0). Features are ordered stimulus-major:
stimulus ``s`` owns columns ``s * k .. (s + 1) * k - 1`` for ``k`` features per stimulus.
Nothing loops in Python: the time since onset comes from one cumulative maximum over
time, and every representation is a closed form of it.

Microstimulus i peaks where ``y^2 - (i/m) y - width^2 = 0``, i.e. at trace height
``y* = (i/m + sqrt((i/m)^2 + 4 width^2)) / 2`` (``y* = 1``, the onset, when that exceeds
1), ``log(y*) / log(trace_decay)`` bins after onset, with height
``y* exp(-(y* - i/m)^2 / (2 width^2)) / sqrt(2 pi)``.
"""

from __future__ import annotations

import math
from numbers import Integral, Real

import torch

from .._validation import Interval, check_param
from ..device import to_numpy
from ..errors import ParameterError

__all__ = ["complete_serial_compound", "presence", "microstimulus", "time_since_onset"]


def _onsets(stimuli, name: str) -> torch.Tensor:
    """``(trial, time, stimulus)`` boolean onsets from a 2-D or 3-D array or tensor."""
    if isinstance(stimuli, torch.Tensor):
        t = stimuli
    else:
        try:
            t = torch.from_numpy(to_numpy(stimuli).astype(float, copy=False))
        except (TypeError, ValueError):
            raise ParameterError(
                f"The '{name}' argument must be a numeric (trial, time) or (trial, time, "
                f"stimulus) array; got {type(stimuli).__name__}."
            ) from None
    if t.ndim not in (2, 3):
        raise ParameterError(
            f"The '{name}' argument must be a (trial, time) or (trial, time, stimulus) array "
            f"of stimulus onsets; got {t.ndim}-D input of shape {tuple(t.shape)}."
        )
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ParameterError(
            f"The '{name}' argument contains NaN or infinity; onsets must be finite "
            "(non-zero marks an onset)."
        )
    if t.ndim == 2:
        t = t[..., None]
    return t != 0


def _dtype(stimuli, dtype) -> torch.dtype:
    if dtype is not None:
        return dtype
    if isinstance(stimuli, torch.Tensor) and stimuli.dtype in (torch.float32, torch.float64):
        return stimuli.dtype
    return torch.float64


def _device(stimuli) -> torch.device:
    return stimuli.device if isinstance(stimuli, torch.Tensor) else torch.device("cpu")


def time_since_onset(stimuli) -> torch.Tensor:
    """Bins since the most recent onset of each stimulus in each trial.

    Parameters
    ----------
    stimuli : array-like or torch.Tensor of shape (trial, time) or (trial, time, stimulus)
        Stimulus onsets: a non-zero entry marks an onset in that bin.

    Returns
    -------
    since : torch.Tensor of shape (trial, time, stimulus), int64
        ``t - (last onset at or before t)``; ``-1`` before the first onset. On the
        input's device (the CPU for NumPy input).
    """
    on = _onsets(stimuli, "stimuli")
    n_time = on.shape[1]
    idx = torch.arange(n_time, device=on.device).view(1, n_time, 1)
    last = torch.where(on, idx, torch.full_like(idx, -1)).cummax(dim=1).values
    return torch.where(last >= 0, idx - last, torch.full_like(last, -1))


def _check_duration(duration, owner: str):
    check_param("duration", duration, [None, Interval(Integral, 1, None)], owner)


def complete_serial_compound(stimuli, duration: int | None = None, *,
                             dtype: torch.dtype | None = None) -> torch.Tensor:
    """Complete serial compound (tapped delay line): one feature per bin since onset.

    ``x_{s,k}(t) = 1`` if stimulus ``s`` began ``k`` bins before ``t`` (``k = 0`` in the
    onset bin) and ``k < duration``; 0 otherwise.

    Parameters
    ----------
    stimuli : array-like or torch.Tensor of shape (trial, time) or (trial, time, stimulus)
        Stimulus onsets (non-zero marks an onset).
    duration : int, default=None
        Bins a stimulus stays represented after its onset, i.e. features per stimulus.
        None: until the end of the trial (``time`` features per stimulus).
    dtype : torch.dtype, default=None
        Output precision; None keeps a float32/float64 tensor input's, else float64.

    Returns
    -------
    features : torch.Tensor of shape (trial, time, stimulus * duration)
        On the input's device (the CPU for NumPy input); stimulus-major columns.

    Examples
    --------
    >>> import numpy as np
    >>> onsets = np.zeros((1, 4)); onsets[0, 1] = 1
    >>> complete_serial_compound(onsets)[0].int().tolist()
    [[0, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    """
    _check_duration(duration, "complete_serial_compound")
    since = time_since_onset(stimuli)
    n_trial, n_time, n_stim = since.shape
    n_bins = n_time if duration is None else int(duration)
    lags = torch.arange(n_bins, device=since.device)
    x = since[..., None] == lags  # -1 (before onset) matches no lag
    return x.to(_dtype(stimuli, dtype)).reshape(n_trial, n_time, n_stim * n_bins)


def presence(stimuli, duration: int | None = None, *,
             dtype: torch.dtype | None = None) -> torch.Tensor:
    """Presence representation: one feature per stimulus, 1 while the stimulus is on.

    ``x_s(t) = 1`` if stimulus ``s`` began at most ``duration - 1`` bins before ``t``.

    Parameters
    ----------
    stimuli : array-like or torch.Tensor of shape (trial, time) or (trial, time, stimulus)
        Stimulus onsets (non-zero marks an onset).
    duration : int, default=None
        Bins the stimulus stays on after its onset (the onset bin included); None: until
        the end of the trial.
    dtype : torch.dtype, default=None
        Output precision; None keeps a float32/float64 tensor input's, else float64.

    Returns
    -------
    features : torch.Tensor of shape (trial, time, stimulus)
        On the input's device (the CPU for NumPy input).
    """
    _check_duration(duration, "presence")
    since = time_since_onset(stimuli)
    on = since >= 0
    if duration is not None:
        on &= since < int(duration)
    return on.to(_dtype(stimuli, dtype))


def microstimulus(stimuli, n_microstimuli: int = 6, trace_decay: float = 0.985,
                  width: float = 0.08, *, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Microstimuli: Gaussian readouts of a decaying memory trace (Ludvig et al. 2008).

    At a stimulus onset a memory trace starts at 1 and decays geometrically,
    ``y(t) = trace_decay ** (t - onset)`` (0 before the first onset). Microstimulus
    ``i = 1 .. m`` is a Gaussian basis function of the trace height centred at ``i/m``,
    scaled by the height itself::

        x_i(t) = y(t) * exp(-(y(t) - i/m)^2 / (2 width^2)) / sqrt(2 pi)

    so later microstimuli (small ``i``) peak later, lower and wider. Microstimulus ``i``
    peaks at trace height ``y* = (i/m + sqrt((i/m)^2 + 4 width^2)) / 2`` (capped at 1),
    ``log(y*) / log(trace_decay)`` bins after onset.

    Parameters
    ----------
    stimuli : array-like or torch.Tensor of shape (trial, time) or (trial, time, stimulus)
        Stimulus onsets (non-zero marks an onset).
    n_microstimuli : int, default=6
        ``m``, microstimuli per stimulus.
    trace_decay : float, default=0.985
        Per-bin decay of the memory trace, in (0, 1).
    width : float, default=0.08
        ``width``, the standard deviation of the basis functions (in trace-height units).
    dtype : torch.dtype, default=None
        Output precision; None keeps a float32/float64 tensor input's, else float64.

    Returns
    -------
    features : torch.Tensor of shape (trial, time, stimulus * n_microstimuli)
        On the input's device (the CPU for NumPy input); stimulus-major columns, within
        a stimulus the microstimulus centred at ``1/m`` first.
    """
    owner = "microstimulus"
    check_param("n_microstimuli", n_microstimuli, [Interval(Integral, 1, None)], owner)
    check_param("trace_decay", trace_decay, [Interval(Real, 0, 1, "neither")], owner)
    check_param("width", width, [Interval(Real, 0, None, "neither")], owner)
    since = time_since_onset(stimuli)
    n_trial, n_time, n_stim = since.shape
    dt = _dtype(stimuli, dtype)
    m = int(n_microstimuli)
    y = torch.where(since >= 0, float(trace_decay) ** since.to(dt).clamp_min(0),
                    torch.zeros((), dtype=dt, device=since.device))
    centres = torch.arange(1, m + 1, dtype=dt, device=since.device) / m
    y = y[..., None]
    x = y * torch.exp(-((y - centres) ** 2) / (2.0 * float(width) ** 2)) / math.sqrt(2 * math.pi)
    return x.reshape(n_trial, n_time, n_stim * m)
