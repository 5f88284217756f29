"""Spike trains in NWB's own ragged layout, and binning in one vectorised pass."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from .._validation import Interval, check_param
from ..errors import ParameterError

__all__ = ["SpikeTrains", "bin_edges", "assign_bins"]


def bin_edges(start: float, stop: float, bin_size: float) -> np.ndarray:
    """Edges of equal bins of ``bin_size`` from ``start`` covering ``stop``.

    There are ``max(1, ceil((stop - start) / bin_size))`` bins (to within 1e-9 bin of
    round-off), so the last edge is at or just past ``stop``.

    Parameters
    ----------
    start, stop : float
        Time span in seconds, ``start < stop`` (``start == stop`` gives one bin).
    bin_size : float
        Bin width in seconds, > 0.

    Returns
    -------
    edges : ndarray of shape (n_bins + 1,)
    """
    n_bins = max(1, int(np.ceil((stop - start) / bin_size - 1e-9)))
    return start + bin_size * np.arange(n_bins + 1, dtype=np.float64)


def assign_bins(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each time for equal-width ``edges``, exactly as ``np.histogram``.

    Bins are ``[left, right)`` except the last, which is ``[left, right]``. Times
    outside ``[edges[0], edges[-1]]`` get ``-1``. The index is computed arithmetically
    and then corrected by comparison with the actual edge values, so it agrees with
    ``np.histogram(times, edges)`` bit for bit, also for times exactly on an edge.

    Parameters
    ----------
    times : ndarray of shape (n,)
    edges : ndarray of shape (n_bins + 1,)
        Equally spaced, increasing.

    Returns
    -------
    index : ndarray of int64, shape (n,)
    """
    times = np.asarray(times, dtype=np.float64)
    n_bins = edges.size - 1
    first, last = edges[0], edges[-1]
    inside = (times >= first) & (times <= last)
    idx = np.floor((times - first) * (n_bins / (last - first))).astype(np.int64)
    np.clip(idx, 0, n_bins - 1, out=idx)
    # Correct round-off against the real edges (same rule as np.histogram).
    idx -= times < edges[idx]
    idx += (times >= edges[idx + 1]) & (idx != n_bins - 1)
    idx[~inside] = -1
    return idx


class SpikeTrains:
    """Spike times of many units in one flat array (NWB's ragged layout).

    Parameters
    ----------
    times : array-like of shape (n_spikes,)
        All spike times in seconds, unit after unit, each unit's times sorted.
    offsets : array-like of shape (n_units + 1,)
        ``times[offsets[i]:offsets[i + 1]]`` are the spikes of the ``i``-th unit;
        ``offsets[0] == 0`` and ``offsets[-1] == n_spikes``.
    unit_ids : array-like of shape (n_units,), default=None
        Identifier of each unit; ``0 .. n_units - 1`` when None.
    units : pandas.DataFrame, default=None
        The unit table (one row per unit, indexed by unit id), e.g. every column of an
        NWB units table. An empty table indexed by ``unit_ids`` when None.

    Attributes
    ----------
    times : ndarray of float64, shape (n_spikes,)
    offsets : ndarray of int64, shape (n_units + 1,)
    unit_ids : ndarray of shape (n_units,)
    units : pandas.DataFrame

    Examples
    --------
    >>> st = SpikeTrains.from_list([[0.1, 0.5], [0.2]], unit_ids=[7, 9])
    >>> len(st), st[9].tolist()
    (2, [0.2])
    >>> st.bin(0.25).values.tolist()
    [[1, 1], [1, 0]]
    """

    def __init__(self, times, offsets, unit_ids=None, units: pd.DataFrame | None = None):
        times = np.asarray(times, dtype=np.float64).ravel()
        offsets = np.asarray(offsets, dtype=np.int64).ravel()
        if offsets.size < 1 or offsets[0] != 0 or offsets[-1] != times.size:
            raise ParameterError(
                "The 'offsets' parameter of SpikeTrains must start at 0 and end at "
                f"len(times)={times.size}. Got offsets starting {offsets[:1].tolist()} "
                f"and ending {offsets[-1:].tolist()} instead."
            )
        if np.any(np.diff(offsets) < 0):
            raise ParameterError("The 'offsets' parameter of SpikeTrains must be non-decreasing.")
        if not np.all(np.isfinite(times)):
            bad = int(np.sum(~np.isfinite(times)))
            raise ParameterError(
                f"SpikeTrains got {bad} spike time(s) that are NaN or infinite; "
                "spike times must be finite seconds."
            )
        n_units = offsets.size - 1
        # Sorted within each unit: a decrease is only allowed where a new unit starts.
        dec = np.flatnonzero(np.diff(times) < 0) + 1
        if dec.size and not np.all(np.isin(dec, offsets[1:-1])):
            first = dec[~np.isin(dec, offsets[1:-1])][0]
            unit_pos = int(np.searchsorted(offsets, first, side="right") - 1)
            raise ParameterError(
                f"SpikeTrains needs each unit's spike times sorted; unit at position "
                f"{unit_pos} has unsorted times (index {int(first)} in the flat array)."
            )
        if unit_ids is None:
            unit_ids = np.arange(n_units) if units is None else units.index.to_numpy()
        unit_ids = np.asarray(unit_ids)
        if unit_ids.shape != (n_units,):
            raise ParameterError(
                f"The 'unit_ids' parameter of SpikeTrains must have one id per unit "
                f"({n_units}). Got shape {unit_ids.shape} instead."
            )
        if len(np.unique(unit_ids)) != n_units:
            raise ParameterError("The 'unit_ids' parameter of SpikeTrains must be unique.")
        if units is None:
            units = pd.DataFrame(index=pd.Index(unit_ids, name="unit"))
        elif len(units) != n_units:
            raise ParameterError(
                f"The 'units' table of SpikeTrains must have one row per unit ({n_units}). "
                f"Got {len(units)} rows instead."
            )
        else:
            units = units.copy()
            units.index = pd.Index(unit_ids, name="unit")
        self.times = times
        self.offsets = offsets
        self.unit_ids = unit_ids
        self.units = units
        self._pos = {uid.item() if hasattr(uid, "item") else uid: i for i, uid in enumerate(unit_ids)}

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_list(cls, trains: Sequence, unit_ids=None, units: pd.DataFrame | None = None):
        """Build from one array of spike times per unit (each sorted, or sorted here).

        Parameters
        ----------
        trains : sequence of array-like
            Spike times of each unit in seconds.
        unit_ids, units
            As in :class:`SpikeTrains`.
        """
        arrays = [np.sort(np.asarray(t, dtype=np.float64).ravel()) for t in trains]
        offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([a.size for a in arrays])
        times = np.concatenate(arrays) if arrays else np.zeros(0)
        return cls(times, offsets, unit_ids=unit_ids, units=units)

    @classmethod
    def from_events(cls, times, unit_labels, unit_ids=None, units: pd.DataFrame | None = None):
        """Build from parallel arrays of spike times and the unit each belongs to.

        Parameters
        ----------
        times : array-like of shape (n_spikes,)
        unit_labels : array-like of shape (n_spikes,)
            The unit id of each spike.
        unit_ids : array-like, default=None
            The units, in order (units without spikes allowed); the sorted unique
            labels when None.
        """
        times = np.asarray(times, dtype=np.float64).ravel()
        labels = np.asarray(unit_labels).ravel()
        if labels.shape != times.shape:
            raise ParameterError(
                f"The 'unit_labels' parameter must have one label per spike ({times.size}). "
                f"Got {labels.size} instead."
            )
        ids = np.unique(labels) if unit_ids is None else np.asarray(unit_ids)
        sorter = np.argsort(ids)
        pos = sorter[np.searchsorted(ids, labels, sorter=sorter)]
        if labels.size and not np.array_equal(ids[pos], labels):
            raise ParameterError("Some 'unit_labels' are not among 'unit_ids'.")
        order = np.lexsort((times, pos))
        counts = np.bincount(pos, minlength=ids.size)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        return cls(times[order], offsets, unit_ids=ids, units=units)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def n_spikes(self) -> int:
        """Total number of spikes."""
        return int(self.times.size)

    @property
    def counts(self) -> np.ndarray:
        """Number of spikes of each unit, shape (n_units,)."""
        return np.diff(self.offsets)

    def _position(self, unit_id) -> int:
        key = unit_id.item() if hasattr(unit_id, "item") else unit_id
        try:
            return self._pos[key]
        except (KeyError, TypeError):
            shown = self.unit_ids[:10].tolist()
            raise KeyError(
                f"No unit with id {unit_id!r}; unit ids are {shown}"
                + (" ..." if len(self) > 10 else "")
            ) from None

    def __getitem__(self, unit):
        """Spike times of the unit with this id, or a subset for a list/mask of ids."""
        if isinstance(unit, slice) or (
            not np.isscalar(unit) and not isinstance(unit, numbers.Number)
        ):
            return self.select(unit)
        i = self._position(unit)
        return self.times[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self):
        for i in range(len(self)):
            yield self.times[self.offsets[i] : self.offsets[i + 1]]

    def select(self, units) -> SpikeTrains:
        """The subset of units given by ids, a boolean mask over units, or a slice of positions."""
        if isinstance(units, slice):
            pos = np.arange(len(self))[units]
        else:
            arr = np.asarray(units)
            if arr.dtype == bool:
                if arr.shape != (len(self),):
                    raise ParameterError(
                        f"A boolean unit mask must have shape ({len(self)},). Got {arr.shape}."
                    )
                pos = np.flatnonzero(arr)
            else:
                pos = np.array([self._position(u) for u in arr.ravel()], dtype=np.int64)
        starts, stops = self.offsets[pos], self.offsets[pos + 1]
        lengths = stops - starts
        idx = _ranges(starts, lengths)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return SpikeTrains(
            self.times[idx], offsets, unit_ids=self.unit_ids[pos], units=self.units.iloc[pos]
        )

    def restrict(self, start: float, stop: float) -> SpikeTrains:
        """Spikes with ``start <= t < stop``, all units kept.

        Parameters
        ----------
        start, stop : float
            Seconds, ``start < stop``.
        """
        check_window(start, stop, "SpikeTrains.restrict")
        keep = (self.times >= start) & (self.times < stop)
        unit_of = np.repeat(np.arange(len(self)), self.counts)
        counts = np.bincount(unit_of[keep], minlength=len(self))
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return SpikeTrains(self.times[keep], offsets, unit_ids=self.unit_ids, units=self.units)

    @property
    def span(self) -> tuple[float, float]:
        """(first, last) spike time over all units; (0, 0) without spikes."""
        if self.times.size == 0:
            return 0.0, 0.0
        return float(self.times.min()), float(self.times.max())

    def unit_index(self) -> np.ndarray:
        """Position of the unit each spike belongs to, shape (n_spikes,)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.counts)

    # ------------------------------------------------------------------ binning
    def bin(self, bin_size: float, *, start: float | None = None, stop: float | None = None) -> xr.DataArray:
        """Spike counts of every unit in equal time bins, in one vectorised pass.

        Bins are ``[left, right)`` like ``np.histogram`` except the last, which also
        holds spikes exactly at its right edge; the counts equal per-unit
        ``np.histogram(self[u], edges)`` exactly, where ``edges`` are
        ``start + bin_size * k`` for ``k = 0 .. ceil((stop - start) / bin_size)``.

        Parameters
        ----------
        bin_size : float
            Bin width in seconds, > 0.
        start : float, default=None
            Left edge of the first bin; the first spike time when None.
        stop : float, default=None
            Time the bins must reach; the last spike time when None.

        Returns
        -------
        counts : xarray.DataArray of int64, dims ("time", "unit")
            ``time`` holds bin centres in seconds, ``unit`` the unit ids; the
            ``bin_size`` and bin ``edges`` are kept in ``attrs``.
        """
        check_param("bin_size", bin_size, [Interval(numbers.Real, 0, None, "neither")], "bin")
        lo, hi = self.span
        start = lo if start is None else float(start)
        stop = hi if stop is None else float(stop)
        if stop < start:
            raise ParameterError(
                f"The 'stop' parameter of bin must be >= start ({start}). Got {stop} instead."
            )
        edges = bin_edges(start, stop, float(bin_size))
        n_bins, n_units = edges.size - 1, len(self)
        b = assign_bins(self.times, edges)
        keep = b >= 0
        flat = b[keep] * n_units + self.unit_index()[keep]
        counts = np.bincount(flat, minlength=n_bins * n_units).reshape(n_bins, n_units)
        return xr.DataArray(
            counts,
            dims=("time", "unit"),
            coords={"time": (edges[:-1] + edges[1:]) / 2, "unit": self.unit_ids},
            attrs={"bin_size": float(bin_size), "units": "spikes"},
            name="spike_counts",
        )

    def __repr__(self) -> str:
        lo, hi = self.span
        return f"SpikeTrains({len(self)} units, {self.n_spikes} spikes, {lo:.3f}-{hi:.3f} s)"

    def equals(self, other: SpikeTrains) -> bool:
        """True when times, offsets and unit ids are equal."""
        return (
            isinstance(other, SpikeTrains)
            and np.array_equal(self.times, other.times)
            and np.array_equal(self.offsets, other.offsets)
            and np.array_equal(self.unit_ids, other.unit_ids)
        )


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + n)`` for each start and length, vectorised."""
    lengths = np.asarray(lengths, dtype=np.int64)
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    steps = np.ones(total, dtype=np.int64)
    nz = lengths > 0
    first = np.concatenate([[0], ends[:-1]])[nz]
    steps[first] = np.asarray(starts, dtype=np.int64)[nz] - np.concatenate(
        [[0], (np.asarray(starts)[nz] + lengths[nz] - 1)[:-1]]
    )
    steps[0] = np.asarray(starts)[nz][0]
    return np.cumsum(steps)


def check_window(start: float, stop: float, owner: str, name: str = "window") -> None:
    """Raise unless ``start < stop`` are finite numbers."""
    for v in (start, stop):
        if not isinstance(v, numbers.Real) or not np.isfinite(v):
            raise ParameterError(
                f"The '{name}' parameter of {owner} must be two finite numbers "
                f"(start, stop) with start < stop. Got ({start!r}, {stop!r}) instead."
            )
    if start >= stop:
        raise ParameterError(
            f"The '{name}' parameter of {owner} must have start < stop. "
            f"Got ({start!r}, {stop!r}) instead."
        )
