"""Helpers shared by the synthetic-recording generators: seeding, checks, spike sampling."""

from __future__ import annotations

import numbers
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from .._validation import Interval, check_param
from ..errors import ParameterError
from ..io.spikes import SpikeTrains

__all__ = [
    "SESSION_START",
    "balanced_labels",
    "check_random_state",
    "check_less",
    "check_scalar",
    "draw_baselines",
    "spikes_from_segments",
    "units_table",
]

#: Fixed session start time of every synthetic recording, so that the same seed gives
#: the same metadata (and the same NWB content) on every run.
SESSION_START = datetime(2000, 1, 1, tzinfo=UTC)


def check_random_state(random_state, owner: str) -> np.random.Generator:
    """A :class:`numpy.random.Generator` from an int seed, ``None`` or a generator.

    Parameters
    ----------
    random_state : int, numpy.random.Generator, numpy.random.RandomState or None
        ``None`` draws fresh entropy; an int >= 0 is a seed; a Generator is used as is
        (and advanced); a legacy RandomState seeds a new Generator from one draw.
    owner : str
        Function name for the error message.

    Returns
    -------
    rng : numpy.random.Generator
    """
    check_param(
        "random_state", random_state,
        [None, Interval(numbers.Integral, 0, None, "left"), np.random.Generator,
         np.random.RandomState],
        owner,
    )
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(int(random_state.randint(0, 2**31 - 1)))
    return np.random.default_rng(random_state)


def check_scalar(name: str, value, kind: type, owner: str, left=None, right=None,
                 closed: str = "both") -> None:
    """Raise :class:`ParameterError` unless ``value`` is a number of ``kind`` in range."""
    check_param(name, value, [Interval(kind, left, right, closed)], owner)


def balanced_labels(n: int, n_classes: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels in ``0 .. n_classes - 1``, as balanced as possible, in random order.

    Every class gets ``n // n_classes`` or one more of the ``n`` labels.
    """
    return rng.permutation(np.arange(n) % n_classes).astype(np.int64)


def spikes_from_segments(starts: np.ndarray, lengths: np.ndarray, rates: np.ndarray,
                         rng: np.random.Generator) -> SpikeTrains:
    """Poisson spike trains whose rates are constant within each time segment.

    Within a segment of length ``L`` and rate ``r`` the number of spikes of a unit is
    ``Poisson(r * L)`` and the spikes are uniform in the segment, which is the exact
    law of an inhomogeneous Poisson process with a piecewise-constant rate. All units
    and segments are drawn in one vectorised pass (no Python loop over spikes).

    Parameters
    ----------
    starts : ndarray of shape (n_segments,)
        Segment start times in seconds.
    lengths : float or ndarray of shape (n_segments,)
        Segment lengths in seconds.
    rates : ndarray of shape (n_segments, n_units)
        Rates in Hz (>= 0).
    rng : numpy.random.Generator

    Returns
    -------
    spikes : SpikeTrains
        Unit ids ``0 .. n_units - 1``; each unit's times sorted.
    """
    starts = np.asarray(starts, dtype=np.float64)
    lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), starts.shape)
    n_units = rates.shape[1]
    counts = rng.poisson(rates * lengths[:, None])
    # Unit-major order: all spikes of unit 0, then unit 1 ...
    unit, seg = np.nonzero(counts.T)
    n = counts.T[unit, seg]
    unit = np.repeat(unit, n)
    seg = np.repeat(seg, n)
    times = starts[seg] + rng.random(unit.size) * lengths[seg]
    order = np.lexsort((times, unit))
    per_unit = np.bincount(unit, minlength=n_units)
    offsets = np.concatenate([[0], np.cumsum(per_unit)]).astype(np.int64)
    return SpikeTrains(times[order], offsets)


def units_table(baseline_rates: np.ndarray) -> pd.DataFrame:
    """Unit table with each unit's planted baseline rate (Hz)."""
    return pd.DataFrame(
        {"baseline_rate": np.asarray(baseline_rates, dtype=np.float64)},
        index=pd.Index(np.arange(len(baseline_rates)), name="unit"),
    )


def draw_baselines(n_units: int, baseline_rate: float, rng: np.random.Generator,
                   cap: float | None = None) -> np.ndarray:
    """Baseline rates log-uniform within a factor ``e**±0.5`` of ``baseline_rate``."""
    rates = baseline_rate * np.exp(rng.uniform(-0.5, 0.5, size=n_units))
    if cap is not None:
        rates = np.minimum(rates, cap)
    return rates


def check_less(name: str, value: float, bound_name: str, bound: float, owner: str) -> None:
    """Raise unless ``value < bound`` (a constraint between two parameters)."""
    if not value < bound:
        raise ParameterError(
            f"The '{name}' parameter of {owner} must be less than {bound_name}={bound!r}. "
            f"Got {value!r} instead."
        )
