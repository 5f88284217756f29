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

    There are ``n_bins = max(1, ceil((stop - start) / bin_size))`` bins (the ratio is
    taken to within 1e-9 of a bin, so round-off in ``stop - start`` does not add an
    almost empty bin). The edges are ``start + bin_size * k`` for ``k = 0 .. n_bins``,
    except that the last edge is raised to ``stop`` when round-off leaves it just below
    ``stop`` (by at most 1e-9 of a bin), so a time equal to ``stop`` always falls in
    the last bin.

    Parameters
    ----------
    start, stop : float
        Time span in seconds, finite, ``start <= stop`` (``start == stop`` gives one bin).
    bin_size : float
        Bin width in seconds, > 0.

    Returns
    -------
    edges : ndarray of float64, shape (n_bins + 1,)
        Strictly increasing.

    Raises
    ------
    ParameterError
        When ``start``/``stop`` are not finite, ``stop < start``, or ``bin_size`` is so
        small relative to the times that the edges cannot be told apart in float64.

    Examples
    --------
    >>> bin_edges(0.0, 0.3, 0.1).round(12).tolist()
    [0.0, 0.1, 0.2, 0.3]
    """
    start, stop, bin_size = float(start), float(stop), float(bin_size)
    if not (np.isfinite(start) and np.isfinite(stop)):
        raise ParameterError(
            "The 'start' and 'stop' parameters of bin must be finite seconds. "
            f"Got start={start!r}, stop={stop!r} instead."
        )
    if stop < start:
        raise ParameterError(
            f"The 'stop' parameter of bin must be >= start ({start!r}). Got {stop!r} instead."
        )
    if not (np.isfinite(bin_size) and bin_size > 0):
        raise ParameterError(
            f"The 'bin_size' parameter of bin must be a float in the range (0, inf). "
            f"Got {bin_size!r} instead."
        )
    n_bins = max(1, int(np.ceil((stop - start) / bin_size - 1e-9)))
    edges = start + bin_size * np.arange(n_bins + 1, dtype=np.float64)
    if edges[-1] < stop:
        edges[-1] = stop
    spacing = np.diff(edges)
    if not np.all(spacing > 0):
        raise ParameterError(
            f"The 'bin_size' parameter of bin ({bin_size!r}) is too small for times near "
            f"{max(abs(start), abs(stop))!r} s: consecutive bin edges are equal in float64."
        )
    return edges


def assign_bins(times: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index of each time for equally spaced ``edges``, exactly as ``np.histogram``.

    Bins are ``[left, right)`` except the last, which is ``[left, right]``. Times
    outside ``[edges[0], edges[-1]]`` (and NaN) get ``-1``. The index is computed arithmetically
    and then corrected by comparison with the actual edge values, so it agrees with
    ``np.histogram(times, edges)`` bit for bit, also for times exactly on an edge.

    Parameters
    ----------
    times : ndarray of shape (n,)
        Finite times in seconds.
    edges : ndarray of shape (n_bins + 1,)
        Equally spaced (to round-off, e.g. from :func:`bin_edges`), increasing.

    Returns
    -------
    index : ndarray of int64, shape (n,)
    """
    times = np.asarray(times, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    n_bins = edges.size - 1
    first, last = edges[0], edges[-1]
    # Arithmetic estimate, in place in one float buffer.
    x = np.subtract(times, first)
    x *= n_bins / (last - first)
    np.floor(x, out=x)
    np.clip(x, 0, n_bins - 1, out=x)
    with np.errstate(invalid="ignore"):  # NaN times: any index, set to -1 below
        idx = x.astype(np.int64)
    del x
    np.clip(idx, 0, n_bins - 1, out=idx)
    # Correct round-off against the real edges (same rule as np.histogram): the
    # estimate is off by at most one bin.
    e = edges[idx]
    idx -= times < e
    np.take(edges[1:], idx, out=e)  # right edge of each bin (idx == -1 only outside)
    idx += (times >= e) & (idx != n_bins - 1)
    del e
    idx[~((times >= first) & (times <= last))] = -1  # outside, or NaN
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
        if units is not None and len(units) != n_units:
            raise ParameterError(
                f"The 'units' table of SpikeTrains must have one row per unit ({n_units}). "
                f"Got {len(units)} rows instead."
            )
        if unit_ids is None:
            unit_ids = np.arange(n_units) if units is None else units.index.to_numpy()
        unit_ids = np.asarray(unit_ids)
        if unit_ids.shape != (n_units,):
            raise ParameterError(
                f"The 'unit_ids' parameter of SpikeTrains must have one id per unit "
                f"({n_units}). Got shape {unit_ids.shape} instead."
            )
        uniq, n_seen = np.unique(unit_ids, return_counts=True)
        if uniq.size != n_units:
            dup = uniq[n_seen > 1]
            raise ParameterError(
                "The 'unit_ids' parameter of SpikeTrains must be unique. Got duplicated "
                f"ids {dup[:10].tolist()}" + (" ..." if dup.size > 10 else "") + " instead."
            )
        if units is None:
            units = pd.DataFrame(index=pd.Index(unit_ids, name="unit"))
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
        ids = np.unique(labels) if unit_ids is None else np.asarray(unit_ids).ravel()
        if labels.size and ids.size == 0:
            raise ParameterError(
                "The 'unit_ids' parameter of SpikeTrains.from_events is empty but there "
                f"are {labels.size} spikes."
            )
        sorter = np.argsort(ids, kind="stable")
        pos = np.searchsorted(ids, labels, sorter=sorter)
        pos = sorter[np.clip(pos, 0, max(ids.size - 1, 0))]
        if labels.size and not np.array_equal(ids[pos], labels):
            unknown = np.setdiff1d(labels, ids)
            raise ParameterError(
                f"The 'unit_labels' parameter of SpikeTrains.from_events has labels that are "
                f"not among 'unit_ids': {unknown[:10].tolist()}"
                + (" ..." if unknown.size > 10 else "") + "."
            )
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
                f"No unit with id {key!r}; unit ids are {shown}"
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
                ids = units if isinstance(units, list | tuple) else arr.ravel()
                pos = np.array([self._position(u) for u in ids], dtype=np.int64)
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
        ``np.histogram(self[u], edges)`` exactly, with
        ``edges = bin_edges(start, stop, bin_size)`` (``start + bin_size * k`` for
        ``k = 0 .. ceil((stop - start) / bin_size)``, the last edge never below
        ``stop``). Spikes outside ``[start, last edge]`` are not counted.

        The spikes are processed in fixed-size chunks of the flat times array (all
        units at once), so besides the count matrix only a few MiB of temporaries
        are allocated, whatever the number of spikes.

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
            ``time`` holds bin centres in seconds, ``unit`` the unit ids; ``attrs``
            keeps ``bin_size``, ``start`` and ``stop``, from which
            :func:`bin_edges` gives the exact edges.

        Raises
        ------
        ParameterError
            When ``bin_size`` is not a positive finite number, ``start``/``stop`` are
            not finite or ``stop < start``.
        """
        check_param("bin_size", bin_size, [Interval(numbers.Real, 0, None, "neither")], "bin")
        lo, hi = self.span
        start = lo if start is None else float(start)
        stop = hi if stop is None else float(stop)
        edges = bin_edges(start, stop, float(bin_size))
        n_bins, n_units = edges.size - 1, len(self)
        counts = np.zeros(n_bins * n_units, dtype=np.int64)
        for c0 in range(0, self.n_spikes, _CHUNK):
            c1 = min(c0 + _CHUNK, self.n_spikes)
            b = assign_bins(self.times[c0:c1], edges)
            u = self._unit_positions(c0, c1)
            keep = b >= 0
            if not keep.all():
                b, u = b[keep], u[keep]
            del keep
            b *= n_units
            b += u  # flat index into the (time, unit) matrix
            del u
            np.add.at(counts, b, 1)
        return xr.DataArray(
            counts.reshape(n_bins, n_units),
            dims=("time", "unit"),
            coords={"time": (edges[:-1] + edges[1:]) / 2, "unit": self.unit_ids},
            attrs={"bin_size": float(bin_size), "start": start, "stop": stop,
                   "units": "spikes"},
            name="spike_counts",
        )

    def _unit_positions(self, c0: int, c1: int) -> np.ndarray:
        """Unit position of the spikes ``c0 .. c1 - 1`` of the flat array."""
        offsets = self.offsets
        u0 = int(np.searchsorted(offsets, c0, side="right")) - 1
        u1 = int(np.searchsorted(offsets, c1 - 1, side="right")) - 1
        bounds = np.clip(offsets[u0 : u1 + 2], c0, c1)
        return np.repeat(np.arange(u0, u1 + 1, dtype=np.int64), np.diff(bounds))

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


_CHUNK = 1 << 16  # spikes per chunk in SpikeTrains.bin (about 2 MiB of temporaries)


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
