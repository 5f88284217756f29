"""``Recording``: what every loader returns, and the analysis views it gives."""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._validation import Interval, check_param
from ..errors import ParameterError, RecordingError
from .spikes import SpikeTrains, _ranges, assign_bins, bin_edges, check_window

__all__ = ["Recording", "LazyMapping", "make_signal"]


class LazyMapping(Mapping):
    """A read-only mapping whose values may be zero-argument loaders, called on first access.

    Listing the keys never loads anything; ``m[name]`` loads that one entry once and
    keeps it.
    """

    def __init__(self, items: Mapping[str, Any] | None = None):
        self._items: dict[str, Any] = dict(items or {})
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, key: str):
        if key in self._loaded:
            return self._loaded[key]
        try:
            value = self._items[key]
        except KeyError:
            raise KeyError(
                f"{key!r} is not here; available: {sorted(self._items)}"
            ) from None
        if callable(value) and not isinstance(value, xr.DataArray | pd.DataFrame):
            value = value()
        self._loaded[key] = value
        return value

    def __contains__(self, key) -> bool:
        # Mapping's default would call __getitem__ and so load the entry.
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def is_loaded(self, key: str) -> bool:
        """Whether ``key`` has been read already (always True for plain values).

        Raises
        ------
        KeyError
            When ``key`` is not in the mapping.
        """
        if key not in self._items:
            raise KeyError(f"{key!r} is not here; available: {sorted(self._items)}")
        return key in self._loaded or not callable(self._items[key])

    def __repr__(self) -> str:
        return f"LazyMapping({list(self._items)})"


def make_signal(data, timestamps=None, *, rate=None, starting_time=0.0, channels=None,
                name=None, unit=None, description=None) -> xr.DataArray:
    """A continuous signal as a ``(time, channel)`` DataArray.

    Both NWB timing conventions: explicit ``timestamps``, or ``starting_time`` + ``rate``.

    Parameters
    ----------
    data : array-like of shape (n_times,) or (n_times, n_channels)
    timestamps : array-like of shape (n_times,), default=None
        Sample times in seconds; required unless ``rate`` is given.
    rate : float, default=None
        Sampling rate in Hz (used when ``timestamps`` is None).
    starting_time : float, default=0.0
        Time of the first sample in seconds, with ``rate``.
    channels : array-like of shape (n_channels,), default=None
        Channel labels; ``0 .. n_channels - 1`` when None.
    name, unit, description : str, default=None
        Kept as the DataArray's name and in ``attrs``.

    Returns
    -------
    signal : xarray.DataArray, dims ("time", "channel")
    """
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    elif data.ndim > 2:
        data = data.reshape(data.shape[0], -1)
    n = data.shape[0]
    if timestamps is None:
        if rate is None:
            raise ParameterError(f"Signal {name!r} needs either 'timestamps' or 'rate'.")
        timestamps = float(starting_time) + np.arange(n) / float(rate)
    timestamps = np.asarray(timestamps, dtype=np.float64).ravel()
    if timestamps.size != n:
        raise ParameterError(
            f"Signal {name!r} has {n} samples but {timestamps.size} timestamps."
        )
    if channels is None:
        channels = np.arange(data.shape[1])
    attrs = {k: v for k, v in {"unit": unit, "description": description}.items() if v is not None}
    if rate is not None:
        attrs["rate"] = float(rate)
    return xr.DataArray(
        data, dims=("time", "channel"),
        coords={"time": timestamps, "channel": np.asarray(channels)},
        name=name, attrs=attrs,
    )


def _resolve(value):
    if callable(value) and not isinstance(value, SpikeTrains | pd.DataFrame | xr.DataArray):
        return value()
    return value


class Recording:
    """One recording session: spikes, trials, intervals, continuous signals and metadata.

    Loaders return it (:func:`neuroml.load_recording`); users without NWB build it with
    :meth:`from_arrays` or :meth:`from_xarray`. Any field may be given as a zero-argument
    callable, which is called on first access (how loaders stay lazy).

    Parameters
    ----------
    spikes : SpikeTrains or callable, default=None
    trials : pandas.DataFrame or callable, default=None
        One row per trial with at least ``start_time`` and ``stop_time`` columns when
        read from NWB, plus every custom column.
    intervals : mapping of str to DataFrame (or callable), default=None
        Epochs and other interval tables by name.
    signals : mapping of str to DataArray (or callable), default=None
        Continuous signals as ``(time, channel)`` DataArrays with time in seconds.
    meta : dict, default=None
        Session metadata: ``identifier``, ``session_description``, ``session_start_time``,
        ``subject`` (dict), ``source`` (path) and anything else.
    closer : callable, default=None
        Called once by :meth:`close` (closes the file a loader keeps open).

    Examples
    --------
    >>> rec = Recording.from_arrays(spike_times=[[0.1, 0.4], [0.2]], identifier="demo")
    >>> rec.bin(0.25).sizes["unit"]
    2
    """

    def __init__(self, *, spikes=None, trials=None, intervals=None, signals=None,
                 meta: dict | None = None, closer: Callable[[], None] | None = None):
        self._spikes = spikes
        self._trials = trials
        self.intervals = intervals if isinstance(intervals, LazyMapping) else LazyMapping(intervals)
        self.signals = signals if isinstance(signals, LazyMapping) else LazyMapping(signals)
        self.meta = dict(meta or {})
        self._closer = closer

    # ------------------------------------------------------------------ fields
    @property
    def spikes(self) -> SpikeTrains | None:
        """The units' spike trains, or None when the recording has none."""
        self._spikes = _resolve(self._spikes)
        return self._spikes

    @property
    def trials(self) -> pd.DataFrame | None:
        """The trials table, or None when the recording has none."""
        self._trials = _resolve(self._trials)
        return self._trials

    @property
    def has_spikes(self) -> bool:
        """Whether spikes exist (without loading them)."""
        return self._spikes is not None

    @property
    def has_trials(self) -> bool:
        """Whether a trials table exists (without loading it)."""
        return self._trials is not None

    @property
    def id(self) -> str:
        """A name for the recording: the file stem, else the NWB identifier."""
        src = self.meta.get("source")
        if src:
            name = Path(str(src)).name
            for suffix in (".zarr.nwb", ".nwb", ".zarr"):
                if name.endswith(suffix):
                    return name[: -len(suffix)]
            return Path(name).stem
        return str(self.meta.get("identifier", "recording"))

    def _where(self) -> str:
        src = self.meta.get("source")
        return f"recording '{src}'" if src else f"recording '{self.id}'"

    def _require_spikes(self) -> SpikeTrains:
        spikes = self.spikes
        if spikes is None:
            raise RecordingError(
                f"{self._where()} has no spike trains (no units table); "
                f"it holds signals {list(self.signals)} and intervals {list(self.intervals)}."
            )
        return spikes

    def _require_trials(self) -> pd.DataFrame:
        trials = self.trials
        if trials is None:
            raise RecordingError(
                f"{self._where()} has no trials table; interval tables present: "
                f"{list(self.intervals)} (use one with `rec.with_trials(name)`)."
            )
        return trials

    def with_trials(self, trials: pd.DataFrame | str) -> Recording:
        """The same recording with another trials table (e.g. one of ``intervals``).

        Parameters
        ----------
        trials : pandas.DataFrame or str
            The new trials table, or the name of one of the recording's interval
            tables (a key of :attr:`intervals`, e.g. ``"recognition_table"``), read
            when first used.

        Returns
        -------
        recording : Recording
            Shares spikes, intervals, signals and metadata with this one; closing it
            does not close the file.

        Raises
        ------
        RecordingError
            ``trials`` names no interval table of this recording.
        ParameterError
            ``trials`` is neither a DataFrame nor a str.

        Examples
        --------
        >>> import pandas as pd
        >>> table = pd.DataFrame({"start_time": [0.0, 1.0], "stop_time": [0.5, 1.5]})
        >>> rec = Recording.from_arrays(spike_times=[[0.1, 1.2]], intervals={"task": table})
        >>> len(rec.with_trials("task").trials)
        2
        """
        if isinstance(trials, str):
            if trials not in self.intervals:
                raise RecordingError(
                    f"{self._where()} has no interval table {trials!r}; the 'trials' "
                    f"parameter of with_trials must be one of {list(self.intervals)} "
                    "or a DataFrame."
                )
            intervals, name = self.intervals, trials
            trials = lambda: intervals[name]  # noqa: E731 - read on first use, as loaders do
        elif not isinstance(trials, pd.DataFrame):
            raise ParameterError(
                f"The 'trials' parameter of with_trials must be a DataFrame or the name of "
                f"an interval table of {self._where()} (one of {list(self.intervals)}). "
                f"Got {type(trials).__name__}."
            )
        rec = Recording(spikes=self._spikes, trials=trials, intervals=self.intervals,
                        signals=self.signals, meta=self.meta, closer=None)
        return rec

    # ------------------------------------------------------------------ views
    def bin(self, bin_size: float, *, start: float | None = None, stop: float | None = None) -> xr.DataArray:
        """Spike counts of all units in equal bins; see :meth:`SpikeTrains.bin`."""
        return self._require_spikes().bin(bin_size, start=start, stop=stop)

    def signal(self, name: str, at=None) -> xr.DataArray:
        """A continuous signal, optionally resampled onto given times.

        Resampling is linear interpolation between the two nearest samples of each
        channel (``np.interp``); times outside the signal's first and last sample give
        NaN rather than an extrapolated value.

        Parameters
        ----------
        name : str
            A key of :attr:`signals`.
        at : array-like of shape (n,), default=None
            Times in seconds (e.g. the ``time`` coordinate of :meth:`bin`).

        Returns
        -------
        signal : xarray.DataArray, dims ("time", "channel")
        """
        if name not in self.signals:
            raise RecordingError(
                f"{self._where()} has no signal {name!r}; signals: {sorted(self.signals)}"
            )
        sig = self.signals[name]
        if at is None:
            return sig
        at = np.asarray(at, dtype=np.float64)
        values = interp_linear(sig["time"].values, np.asarray(sig.values, dtype=np.float64), at.ravel())
        return xr.DataArray(
            values.reshape(at.shape + values.shape[1:]) if at.ndim == 1 else values,
            dims=("time", "channel"),
            coords={"time": at.ravel(), "channel": sig["channel"].values},
            name=sig.name, attrs=dict(sig.attrs),
        )

    def epochs(self, align_to: str, window: tuple[float, float], bin_size: float, *,
               source: str = "spikes", trials=None) -> xr.DataArray:
        """Trial-aligned data as a ``(trial, time, unit|channel)`` DataArray.

        For spikes, ``counts[i, :, u]`` equals ``np.histogram(spikes[u] - event_i, edges)``
        exactly, with ``edges = bin_edges(window[0], window[1], bin_size)`` (bins
        ``[left, right)``, the last one closed). Windows may overlap (a spike is counted
        in every window it falls in) and may run past the recording (empty bins are 0).
        For a signal, each bin holds the linear interpolation at its centre, NaN where
        the centre lies outside the signal's samples.

        Parameters
        ----------
        align_to : str
            A trials-table column of event times in seconds (e.g. ``"start_time"``,
            ``"go_cue"``); each trial is aligned to its own event.
        window : (float, float)
            Start and stop of the window around the event, in seconds (start < stop).
        bin_size : float
            Bin width in seconds, > 0. The window holds ``ceil((stop - start) / bin_size)``
            bins starting at ``start``.
        source : str, default="spikes"
            ``"spikes"`` for spike counts, or the name of a signal, sampled by linear
            interpolation at the bin centres (see :meth:`signal`).
        trials : array-like of bool or labels, default=None
            Which trials to use (a boolean mask or trial index labels); all when None.

        Returns
        -------
        epochs : xarray.DataArray, dims ("trial", "time", "unit") or ("trial", "time", "channel")
            ``time`` is bin centres relative to the event; the ``trial`` dimension
            carries every trials-table column as a coordinate, so
            ``da.groupby("condition").mean("trial")`` is a PSTH (a column named
            ``trial``, ``time``, ``unit`` or ``channel`` becomes ``trials_<name>``).
        """
        table = self._require_trials()
        if trials is not None:
            sel = np.asarray(trials)
            table = table.loc[sel] if sel.dtype == bool else table.loc[list(sel)]
        if not isinstance(align_to, str) or align_to not in table.columns:
            raise RecordingError(
                f"The 'align_to' parameter of epochs must be a column of the trials table "
                f"of {self._where()}; columns: {list(table.columns)}. Got {align_to!r}."
            )
        try:
            w0, w1 = (float(window[0]), float(window[1]))
        except (TypeError, ValueError, IndexError):
            raise ParameterError(
                f"The 'window' parameter of epochs must be (start, stop) in seconds. Got {window!r}."
            ) from None
        check_window(w0, w1, "epochs")
        check_param("bin_size", bin_size, [Interval(numbers.Real, 0, None, "neither")], "epochs")
        events = pd.to_numeric(table[align_to], errors="coerce").to_numpy(dtype=np.float64)
        if np.any(~np.isfinite(events)):
            bad = table.index[~np.isfinite(events)].tolist()
            raise RecordingError(
                f"Column {align_to!r} of the trials table of {self._where()} has "
                f"{len(bad)} missing (NaN) event time(s), trials {bad[:10]}; pass "
                f"trials=rec.trials[{align_to!r}].notna() to use the others."
            )
        edges = bin_edges(w0, w1, float(bin_size))
        centres = (edges[:-1] + edges[1:]) / 2
        if source == "spikes":
            values, feature_dim, features = self._epoch_spikes(events, edges)
        else:
            sig = self.signal(source)
            t = (events[:, None] + centres[None, :]).ravel()
            v = interp_linear(sig["time"].values, np.asarray(sig.values, dtype=np.float64), t)
            values = v.reshape(events.size, centres.size, -1)
            feature_dim, features = "channel", sig["channel"].values
        coords: dict[str, Any] = {
            "trial": np.asarray(table.index),
            "time": centres,
            feature_dim: features,
        }
        for col in table.columns:
            # A column named like a dimension ("time", "unit" ...) cannot be a trial
            # coordinate under its own name; it is kept as "trials_<name>".
            name = f"trials_{col}" if col in ("trial", "time", feature_dim) else col
            coords[name] = ("trial", _column_values(table[col]))
        return xr.DataArray(
            values, dims=("trial", "time", feature_dim), coords=coords,
            attrs={"align_to": align_to, "bin_size": float(bin_size), "window": [w0, w1],
                   "source": source},
            name="spike_counts" if source == "spikes" else source,
        )

    def _epoch_spikes(self, events: np.ndarray, edges: np.ndarray):
        """Counts per (trial, bin, unit) for windows ``events + edges``, vectorised."""
        spikes = self._require_spikes()
        n_units, n_bins, n_trials = len(spikes), edges.size - 1, events.size
        order = np.argsort(spikes.times, kind="stable")
        times = spikes.times[order]
        units = spikes.unit_index()[order]
        # Candidate spikes by absolute time, one bin wider on each side so that
        # round-off in ``event + edge`` never drops a spike; ``assign_bins`` on the
        # relative times then decides exactly (as np.histogram(t - event, edges)).
        pad = edges[1] - edges[0]
        lo = np.searchsorted(times, events + (edges[0] - pad), side="left")
        hi = np.searchsorted(times, events + (edges[-1] + pad), side="right")
        lengths = hi - lo
        idx = _ranges(lo, lengths)
        trial_of = np.repeat(np.arange(n_trials, dtype=np.int64), lengths)
        rel = times[idx] - events[trial_of]
        b = assign_bins(rel, edges)
        keep = b >= 0
        flat = (trial_of[keep] * n_bins + b[keep]) * n_units + units[idx][keep]
        counts = np.bincount(flat, minlength=n_trials * n_bins * n_units)
        return counts.reshape(n_trials, n_bins, n_units), "unit", spikes.unit_ids

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(cls, *, spike_times=None, unit_ids=None, units: pd.DataFrame | None = None,
                    trials: pd.DataFrame | Mapping | None = None,
                    signals: Mapping[str, Any] | None = None,
                    intervals: Mapping[str, pd.DataFrame] | None = None,
                    identifier: str = "recording", **meta) -> Recording:
        """Build a recording from plain arrays (no NWB file needed).

        Parameters
        ----------
        spike_times : sequence of array-like, or SpikeTrains, default=None
            One array of spike times (seconds) per unit.
        unit_ids : array-like, default=None
            Unit identifiers; ``0 .. n_units - 1`` when None.
        units : pandas.DataFrame, default=None
            A unit table, one row per unit.
        trials : DataFrame or dict of columns, default=None
            Trials table; ``start_time``/``stop_time`` columns are recommended.
        signals : mapping of str to DataArray or (timestamps, data), default=None
            Continuous signals; a ``(timestamps, data)`` tuple becomes a
            ``(time, channel)`` DataArray.
        intervals : mapping of str to DataFrame, default=None
        identifier : str, default="recording"
        **meta
            Further metadata (``session_description``, ``subject`` ...).
        """
        spikes = None
        if spike_times is not None:
            spikes = spike_times if isinstance(spike_times, SpikeTrains) else SpikeTrains.from_list(
                spike_times, unit_ids=unit_ids, units=units
            )
        if trials is not None and not isinstance(trials, pd.DataFrame):
            trials = pd.DataFrame(dict(trials))
        if trials is not None and trials.index.name is None:
            trials = trials.copy()
            trials.index.name = "trial"
        sigs = {}
        for name, value in (signals or {}).items():
            if isinstance(value, xr.DataArray):
                sigs[name] = as_signal(value, name)
            else:
                ts, data = value
                sigs[name] = make_signal(data, ts, name=name)
        meta = {"identifier": identifier, **meta}
        return cls(spikes=spikes, trials=trials, intervals=dict(intervals or {}),
                   signals=sigs, meta=meta)

    @classmethod
    def from_xarray(cls, data, *, trials: pd.DataFrame | None = None,
                    identifier: str = "recording", **meta) -> Recording:
        """Build a recording whose signals are DataArrays with a ``time`` dimension.

        Parameters
        ----------
        data : xarray.DataArray or xarray.Dataset
            A DataArray becomes one signal named after it (``"data"`` if unnamed); each
            variable of a Dataset becomes a signal. The non-time dimension is renamed
            ``channel``.
        trials : DataFrame, default=None
        identifier : str, default="recording"
        """
        if isinstance(data, xr.DataArray):
            items = {data.name or "data": data}
        elif isinstance(data, xr.Dataset):
            items = dict(data.data_vars)
        else:
            raise ParameterError(
                f"from_xarray takes an xarray DataArray or Dataset. Got {type(data).__name__}."
            )
        return cls.from_arrays(signals=items, trials=trials, identifier=identifier, **meta)

    # ------------------------------------------------------------------ files
    def to_nwb(self, path, *, overwrite: bool = False) -> Path:
        """Write the recording to an NWB file; loading it back gives equal data.

        Parameters
        ----------
        path : str or Path
        overwrite : bool, default=False
            Replace an existing file.
        """
        from .nwb import write_nwb

        return write_nwb(self, path, overwrite=overwrite)

    def close(self) -> None:
        """Close the file behind the recording (arrays already read stay usable)."""
        if self._closer is not None:
            closer, self._closer = self._closer, None
            closer()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass

    def summary(self) -> dict:
        """What the recording holds, without loading arrays that are not loaded yet."""
        out: dict[str, Any] = {"id": self.id, "identifier": self.meta.get("identifier")}
        for key in ("session_description", "session_start_time", "source"):
            if self.meta.get(key) is not None:
                out[key] = str(self.meta[key])
        if self.has_spikes:
            sp = self.spikes
            out["units"] = len(sp)
            out["spikes"] = sp.n_spikes
        if self.has_trials:
            tr = self.trials
            out["trials"] = len(tr)
            out["trial_columns"] = list(tr.columns)
        out["intervals"] = list(self.intervals)
        out["signals"] = list(self.signals)
        return out

    def __repr__(self) -> str:
        parts = [f"Recording {self.id!r}"]
        if self.has_spikes:
            parts.append(f"spikes={self.spikes!r}")
        if self.has_trials:
            parts.append(f"trials={len(self.trials)}")
        if len(self.signals):
            parts.append(f"signals={list(self.signals)}")
        if len(self.intervals):
            parts.append(f"intervals={list(self.intervals)}")
        return "<" + ", ".join(parts) + ">"


def as_signal(da: xr.DataArray, name: str | None = None) -> xr.DataArray:
    """Coerce a DataArray with a ``time`` dimension to ``(time, channel)``."""
    if "time" not in da.dims:
        raise ParameterError(
            f"Signal {name or da.name!r} must have a 'time' dimension. Got dims {da.dims}."
        )
    if da.ndim == 1:
        da = da.expand_dims(channel=[0], axis=1)
    else:
        others = [d for d in da.dims if d != "time"]
        if len(others) > 1:
            da = da.stack(channel=others)
            da = da.reset_index("channel", drop=True) if hasattr(da, "reset_index") else da
        elif others[0] != "channel":
            da = da.rename({others[0]: "channel"})
        da = da.transpose("time", "channel")
    return da.rename(name) if name else da


def interp_linear(xp: np.ndarray, fp: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Linear interpolation of every column of ``fp`` (n, c) at ``x``; NaN outside ``xp``.

    One ``searchsorted`` for all channels; ``xp`` must be increasing.
    """
    xp = np.asarray(xp, dtype=np.float64)
    fp = np.asarray(fp, dtype=np.float64)
    if fp.ndim == 1:
        fp = fp[:, None]
    out = np.full((x.size, fp.shape[1]), np.nan)
    if xp.size == 0:
        return out
    if xp.size == 1:
        out[x == xp[0]] = fp[0]
        return out
    inside = (x >= xp[0]) & (x <= xp[-1])
    xi = x[inside]
    j = np.clip(np.searchsorted(xp, xi, side="right") - 1, 0, xp.size - 2)
    dx = xp[j + 1] - xp[j]
    w = np.where(dx > 0, (xi - xp[j]) / np.where(dx > 0, dx, 1.0), 0.0)
    out[inside] = fp[j] * (1 - w[:, None]) + fp[j + 1] * w[:, None]
    return out


def _column_values(col: pd.Series) -> np.ndarray:
    values = col.to_numpy()
    if values.dtype == object:
        # Ragged or mixed cells stay objects; plain strings become a str array.
        if all(isinstance(v, str) for v in values):
            return values.astype(str)
    return values
