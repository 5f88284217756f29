"""Sequence decoding step: ``decode_sequence`` (Wiener filter, Kalman decoder, an RNN).

A behaviour signal of the recording (hand velocity, position, or the time derivative of
a position) is decoded at every time bin from spike counts or from fluorescence
signals, by the field's two baselines and a recurrent network, on the same
cross-validation folds, and scored on held-out data only.

Data. Without ``align_to`` the whole recording is used: spike counts in bins of
``bin_size`` (or the samples of the activity signals, resampled to ``bin_size`` when
it is set) and the behaviour at each bin centre (linear interpolation). Stretches
without data (gaps between samples over twice the typical interval, or NaN) split the
recording into runs; no lag, filter or derivative crosses a gap. With ``align_to`` the
bins are aligned to a trials-table event (``Recording.epochs``); a trial ends at its
first bin without data, and trials left with fewer than 2 bins are dropped (counted in
``n_dropped_trials`` with those whose event time is missing).

Cross-validation. ``cv`` contiguous blocks: of the recording's bins (continuous; the
runs inside each block are the sequences the decoders see, so neighbouring,
autocorrelated bins never sit on both sides of a split), or of whole trials in
session order. Every decoder is scored on the same held-out bins: those where all of
them have a prediction (the Wiener filter has none for the first ``n_lags - 1`` bins of
each sequence). The behaviour is standardised with each training set's mean and
standard deviation inside the fold, and predictions are returned in its units.
"""

from __future__ import annotations

import fnmatch
import numbers

import numpy as np
import xarray as xr

from ..._validation import Interval, Options
from ...errors import RecordingError
from ...io.recording import interp_linear
from ..constraints import ListOf, Pair
from ..registry import Input, Output, Param, register_step
from ._common import COLUMN, pick_column

__all__ = ["decode_sequence", "DECODERS"]

#: The decoders the step can run, in the order they are reported.
DECODERS = ("wiener", "kalman", "rnn")
_NONNEG = Interval(numbers.Real, 0, None, "left")


@register_step(
    "decode_sequence",
    inputs={"recording": Input("recording", "the loaded recording")},
    outputs={
        "sequence_decoding": Output("metrics", "held-out R2 of each decoder pooled over the "
                                               "folds (r2_wiener, r2_kalman, r2_rnn), per "
                                               "channel, and the data used"),
        "sequence_scores": Output("array", "(decoder, fold) held-out R2 in each fold, the "
                                           "pooled R2 as coordinate 'pooled'"),
        "sequence_predictions": Output("array", "(decoder, time, channel) held-out "
                                                "predictions ((decoder, trial, time, "
                                                "channel) with align_to), the true "
                                                "behaviour as coordinate 'observed'"),
        "sequence_decoding_figure": Output("figure", "predicted against true behaviour per "
                                                     "channel, and R2 per decoder"),
    },
    params={
        "behavior": Param(COLUMN, ["hand_velocity", "velocity", "position"],
                          "signal to decode (a list: the first the recording has)"),
        "channels": Param([ListOf((str, int)), None], None,
                          "channels of the behaviour signal to decode; all when null"),
        "derivative": Param(["boolean"], False,
                            "decode the time derivative of the signal (velocity from "
                            "position), taken within each run of samples"),
        "smooth": Param([_NONNEG], 0.0,
                        "s.d. in seconds of a Gaussian smoothing the behaviour signal (on "
                        "its own samples, before the derivative); 0: none"),
        "activity": Param([str], "spikes",
                          "'spikes' for spike counts, or a signal name or pattern "
                          "('Activity_*': every matching signal's channels are the units)"),
        "bin_size": Param([Interval(numbers.Real, 0, None, "neither"), None], 0.05,
                          "bin width in seconds; null: the activity signals' own samples "
                          "(continuous only)"),
        "align_to": Param([*COLUMN, None], None,
                          "trials column of event times: decode trial-aligned windows; "
                          "null: the whole recording"),
        "window": Param([Pair()], [-0.5, 1.0],
                        "[start, stop] around the event in seconds (with align_to)"),
        "cv": Param([Interval(numbers.Integral, 2, None)], 5,
                    "contiguous folds: blocks of the recording, or of whole trials in "
                    "session order"),
        "decoders": Param([ListOf((Options(DECODERS),), unique=True)], list(DECODERS),
                          "decoders to run"),
        "n_lags": Param([Interval(numbers.Integral, 1, None)], 10,
                        "Wiener filter: bins of history, the current one included"),
        "alpha": Param([_NONNEG, ListOf((_NONNEG,))], [1.0, 10.0, 100.0, 1000.0, 10000.0],
                       "Wiener filter ridge penalty; a list: chosen in each training set "
                       "on its last fifth"),
        "cell": Param([Options(("lstm", "gru", "rnn"))], "lstm", "RNN cell"),
        "hidden_size": Param([Interval(numbers.Integral, 1, None)], 64, "RNN state size"),
        "max_epochs": Param([Interval(numbers.Integral, 1, None)], 200,
                            "RNN epochs at most (early stopping on held-out sequences)"),
        "chunk": Param([Interval(numbers.Integral, 2, None), None], 100,
                       "continuous recordings: the RNN trains on pieces of this many "
                       "bins cut from the training runs; null: whole runs"),
        "random_state": Param([Interval(numbers.Integral, 0, None)], 0, "seed of the RNN"),
        "figure_window": Param([Pair(), None], None,
                               "[start, stop] in seconds of the traces in the figure "
                               "(continuous); null: the first 1,000 bins (or 5 trials)"),
    },
)
def decode_sequence(ctx, *, recording, behavior, channels, derivative, smooth, activity,
                    bin_size, align_to, window, cv, decoders, n_lags, alpha, cell,
                    hidden_size, max_epochs, chunk, random_state, figure_window):
    """Decode a behaviour signal over time with a Wiener filter, a Kalman decoder and an RNN.

    Held-out R^2 per decoder on contiguous cross-validation folds (blocks of the
    recording, or whole trials with ``align_to``), the held-out predictions and a
    figure of predicted against true behaviour.
    """
    from sklearn.metrics import r2_score

    from ...plotting import new_figure
    from ...plotting.sequence import plot_decoder_scores, plot_predicted_behavior

    rid = ctx.recording_id
    name = _pick_signal(recording, behavior, rid)
    data = _assemble(recording, rid, name=name, channels=channels, derivative=derivative,
                     smooth=smooth, activity=activity, bin_size=bin_size,
                     align_to=align_to, window=window)
    X, Y, piece = data["X"], data["Y"], data["piece"]
    n_seq = int(piece.max()) + 1
    folds = _folds(piece, data["trials"], cv, rid)
    decoders = [d for d in DECODERS if d in decoders]
    pred = np.full((len(decoders), *Y.shape), np.nan)
    fold_of = np.zeros(len(Y), np.int64)
    info = {"wiener_alpha": [], "rnn_epochs": []}
    for f, test in enumerate(folds):
        train = np.setdiff1d(np.arange(len(Y)), test)
        fold_of[test] = f
        mean, scale = Y[train].mean(0), Y[train].std(0)
        scale = np.where(scale > 0, scale, 1.0)
        Ys = (Y - mean) / scale
        for i, dec in enumerate(decoders):
            est = _fit(dec, X, Ys, piece, train, trials=data["trials"], n_lags=n_lags,
                       alpha=alpha, cell=cell, hidden_size=hidden_size,
                       max_epochs=max_epochs, chunk=chunk, random_state=random_state,
                       device=ctx.device, info=info)
            Xt, _, cells = _as_trials(X, Ys, piece, test)
            p = np.asarray(est.predict(Xt), dtype=np.float64)
            pred[i, test] = p[cells[:, 0], cells[:, 1]] * scale + mean
    ok = np.isfinite(pred).all(axis=(0, 2))
    if not ok.any():
        raise RecordingError(f"Recording '{rid}': no held-out bin has a prediction from "
                             f"every decoder (sequences too short for n_lags={n_lags}?).")
    chans = [str(c) for c in data["channel_labels"]]
    per_channel = np.array([r2_score(Y[ok], pred[i, ok], multioutput="raw_values")
                            for i in range(len(decoders))])
    fold_r2 = np.array([[r2_score(Y[ok & (fold_of == f)], pred[i, ok & (fold_of == f)])
                         if (ok & (fold_of == f)).sum() > 1 else np.nan
                         for f in range(len(folds))] for i in range(len(decoders))])
    metrics = {"behavior": name, "derivative": bool(derivative), "activity": activity,
               "mode": "trials" if data["trials"] else "continuous",
               "align_to": data.get("align_to"), "n_features": int(X.shape[1]),
               "n_channels": len(chans), "n_sequences": n_seq, "n_bins": int(ok.sum()),
               "n_bins_total": int(len(Y)), "n_dropped_trials": data.get("n_dropped", 0),
               "n_folds": len(folds), "bin_size": data["bin_size"]}
    for i, dec in enumerate(decoders):
        metrics[f"r2_{dec}"] = float(per_channel[i].mean())
        if len(chans) > 1:
            for j, c in enumerate(chans):
                metrics[f"r2_{dec}_{c}"] = float(per_channel[i, j])
    if "wiener" in decoders:
        metrics["wiener_alpha"] = info["wiener_alpha"]
    if "rnn" in decoders:
        metrics["rnn_epochs"] = info["rnn_epochs"]
    attrs = {"behavior": name + (" (time derivative)" if derivative else ""),
             "unit": data["unit"], "mode": metrics["mode"], "activity": activity,
             **({"align_to": data["align_to"]} if data["trials"] else {})}
    scores = xr.DataArray(fold_r2, dims=("decoder", "fold"), name="sequence_scores",
                          coords={"decoder": decoders, "fold": np.arange(len(folds)),
                                  "pooled": ("decoder", per_channel.mean(1))},
                          attrs={**attrs, "scoring": "r2"})
    predictions = _predictions_array(data, pred, Y, fold_of, ok, decoders, per_channel,
                                     attrs)
    fig = new_figure((11.0, 1.3 + 2.2 * len(chans)))
    grid = fig.add_gridspec(len(chans), 2, width_ratios=(3.8, 1.2))
    trace_axes = [fig.add_subplot(grid[0, 0])]
    trace_axes += [fig.add_subplot(grid[j, 0], sharex=trace_axes[0])
                   for j in range(1, len(chans))]
    plot_predicted_behavior(predictions, ax=trace_axes,
                            time_range=_shown_range(predictions, figure_window))
    plot_decoder_scores(scores, ax=fig.add_subplot(grid[:, 1]),
                        title=f"{len(folds)} contiguous folds")
    return {"sequence_decoding": metrics, "sequence_scores": scores,
            "sequence_predictions": predictions, "sequence_decoding_figure": fig}


# ---------------------------------------------------------------------- data
def _pick_signal(recording, behavior, rid: str) -> str:
    names = [behavior] if isinstance(behavior, str) else list(behavior)
    for name in names:
        if name in recording.signals:
            return name
    shown = repr(names[0]) if len(names) == 1 else f"(any of {names})"
    raise RecordingError(
        f"Recording '{rid}' has no signal {shown} for the 'behavior' parameter of "
        f"decode_sequence; its signals: {sorted(recording.signals)[:20]}.")


def _activity_signals(recording, activity: str, rid: str) -> list[str] | None:
    if activity == "spikes":
        if not recording.has_spikes:
            raise RecordingError(
                f"Recording '{rid}' has no spike trains; set the 'activity' parameter of "
                f"decode_sequence to a signal name or pattern (signals: "
                f"{sorted(recording.signals)[:10]}).")
        return None
    names = sorted(n for n in recording.signals if fnmatch.fnmatchcase(n, activity))
    if not names:
        raise RecordingError(
            f"Recording '{rid}': no signal matches activity={activity!r}; signals: "
            f"{sorted(recording.signals)[:20]}.")
    return names


def _gaps(t: np.ndarray) -> np.ndarray:
    """``(n_gaps, 2)`` sample times around each gap (a step over twice the median step)."""
    if t.size < 3:
        return np.zeros((0, 2))
    step = np.diff(t)
    cut = np.flatnonzero(step > 2 * np.median(step))
    return np.stack([t[cut], t[cut + 1]], 1)


def _in_gap(times: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """True where ``times`` fall strictly inside a gap."""
    out = np.zeros(times.shape, bool)
    for a, b in gaps:
        out |= (times > a) & (times < b)
    return out


def _behaviour(sig: xr.DataArray, channels, derivative: bool, smooth: float, rid: str):
    """The behaviour signal's channels, smoothed and differentiated within each run."""
    from scipy.ndimage import gaussian_filter1d

    if channels is not None:
        labels = [str(c) for c in sig["channel"].values]
        want = [str(c) for c in channels]
        missing = [c for c in want if c not in labels]
        if missing:
            raise RecordingError(f"Recording '{rid}': signal {sig.name!r} has no channel(s) "
                                 f"{missing}; its channels: {labels}.")
        sig = sig.isel(channel=[labels.index(c) for c in want])
    t = np.asarray(sig["time"].values, np.float64)
    v = np.asarray(sig.values, np.float64).reshape(t.size, -1)
    if not (smooth or derivative):
        return t, v, sig
    run = np.r_[0, np.cumsum(np.diff(t) > 2 * np.median(np.diff(t)))] if t.size > 2 \
        else np.zeros(t.size, np.int64)
    out = np.full_like(v, np.nan)
    for r in np.unique(run):
        m = run == r
        if m.sum() < 2:
            continue
        part = v[m]
        if smooth:
            sigma = smooth / np.median(np.diff(t[m]))
            part = gaussian_filter1d(part, sigma, axis=0, mode="nearest")
        out[m] = np.gradient(part, t[m], axis=0) if derivative else part
    return t, out, sig


def _assemble(recording, rid, *, name, channels, derivative, smooth, activity, bin_size,
              align_to, window) -> dict:
    """Activity ``X (bin, feature)``, behaviour ``Y (bin, channel)`` and each bin's sequence."""
    names = _activity_signals(recording, activity, rid)
    bt, bv, bsig = _behaviour(recording.signal(name), channels, derivative, smooth, rid)
    gaps = [_gaps(bt)] + ([_gaps(np.asarray(recording.signal(names[0])["time"].values))]
                          if names else [])
    unit = bsig.attrs.get("unit")
    unit = f"{unit}/s" if derivative and unit else unit
    out = {"channel_labels": list(bsig["channel"].values), "unit": unit,
           "trials": align_to is not None}

    def sample(times):  # behaviour and activity at ``times`` (any shape), NaN in gaps
        flat = times.ravel()
        Yv = interp_linear(bt, bv, flat)
        if names is not None:
            Xv = np.concatenate([np.asarray(recording.signal(n, at=flat).values, np.float64)
                                 for n in names], axis=1)
        else:
            Xv = None
        bad = np.zeros(flat.size, bool)
        for g in gaps:
            bad |= _in_gap(flat, g)
        return Xv, Yv, bad

    if align_to is None:
        if names is None:
            if bin_size is None:
                raise RecordingError(f"Recording '{rid}': decoding from spikes needs a "
                                     "bin_size (got null).")
            binned = recording.bin(bin_size, start=float(bt[0]), stop=float(bt[-1]))
            times = np.asarray(binned["time"].values, np.float64)
            _, Y, bad = sample(times)
            X = np.asarray(binned.values, np.float64)
        else:
            own = np.asarray(recording.signal(names[0])["time"].values, np.float64)
            times = own if bin_size is None else _regular(own, float(bin_size))
            X, Y, bad = sample(times)
        valid = ~bad & np.isfinite(X).all(1) & np.isfinite(Y).all(1)
        cut = np.r_[0, np.cumsum(np.diff(times) > 2 * np.median(np.diff(times)))] \
            if times.size > 2 else np.zeros(times.size, np.int64)
        # a new sequence after every invalid bin or gap in the bin times
        start = np.r_[True, (~valid[:-1]) | (np.diff(cut) > 0)]
        seq = np.cumsum(start & valid)
        keep = valid
        out.update(X=X[keep], Y=Y[keep], times=times[keep], piece=seq[keep] - 1,
                   bin_size=float(bin_size) if bin_size else float(np.median(np.diff(times))))
        out["piece"] = np.unique(out["piece"], return_inverse=True)[1]
        return out
    if bin_size is None:
        raise RecordingError(f"Recording '{rid}': trial-aligned decoding (align_to) needs a "
                             "bin_size (got null).")
    column = pick_column(recording.trials.columns if recording.has_trials else [], align_to,
                         "'align_to'", rid)
    events = np.asarray(recording.trials[column], np.float64)
    use = np.isfinite(events)
    ep = recording.epochs(column, tuple(window), bin_size, source=names[0] if names else
                          "spikes", trials=use)
    rel = np.asarray(ep["time"].values, np.float64)
    times = events[use][:, None] + rel[None, :]
    Xs, Yv, bad = sample(times)
    n_tr, n_t = times.shape
    X = np.asarray(ep.values, np.float64) if names is None else Xs.reshape(n_tr, n_t, -1)
    Y = Yv.reshape(n_tr, n_t, -1)
    valid = (~bad).reshape(n_tr, n_t) & np.isfinite(X).all(-1) & np.isfinite(Y).all(-1)
    valid &= np.cumprod(valid, axis=1).astype(bool)  # a trial ends at its first invalid bin
    kept = valid.sum(1) >= 2
    if kept.sum() < 2:
        raise RecordingError(f"Recording '{rid}': fewer than 2 trials have 2 or more bins "
                             f"with activity and behaviour in window {list(window)}.")
    ep = ep.isel(trial=np.flatnonzero(kept))
    X, Y, valid, times = X[kept], Y[kept], valid[kept], times[kept]
    tr, tt = np.nonzero(valid)
    out.update(X=X[tr, tt], Y=Y[tr, tt], piece=tr, time_index=tt, rel_time=rel,
               trial_coords={c: ("trial", ep[c].values) for c in ep.coords
                             if ep[c].dims == ("trial",)},
               n_trials=int(kept.sum()), n_dropped=int((~use).sum() + (~kept).sum()),
               align_to=column, bin_size=float(bin_size))
    return out


def _regular(own: np.ndarray, bin_size: float) -> np.ndarray:
    """Bin centres of ``bin_size`` over each gap-free run of the sample times ``own``."""
    edges = np.r_[own[0], _gaps(own).ravel(), own[-1]].reshape(-1, 2)
    return np.concatenate([np.arange(a + bin_size / 2, b, bin_size) for a, b in edges])


# ---------------------------------------------------------------------- folds and fits
def _folds(piece: np.ndarray, trials: bool, cv: int, rid: str) -> list[np.ndarray]:
    """Held-out bin indices of each fold: contiguous blocks of bins or of whole trials."""
    n = int(piece.max()) + 1 if trials else len(piece)
    if n < cv:
        what = "trials" if trials else "bins"
        raise RecordingError(f"Recording '{rid}': {n} {what} cannot make cv={cv} folds.")
    blocks = np.array_split(np.arange(n), cv)
    if not trials:
        return blocks
    return [np.flatnonzero(np.isin(piece, b)) for b in blocks]


def _as_trials(X, Y, piece, index):
    """Bins ``index`` as NaN-padded sequences: one per contiguous stretch of one piece.

    Returns ``X (seq, time, feature)``, ``Y (seq, time, channel)`` and, for each bin of
    ``index``, its ``(seq, time)`` cell.
    """
    cuts = np.flatnonzero((np.diff(index) != 1) | (np.diff(piece[index]) != 0)) + 1
    parts = np.split(index, cuts)
    n_times = max(len(p) for p in parts)
    Xt = np.full((len(parts), n_times, X.shape[1]), np.nan)
    Yt = np.full((len(parts), n_times, Y.shape[1]), np.nan)
    cells = np.empty((len(index), 2), np.int64)
    at = 0
    for i, p in enumerate(parts):
        Xt[i, : len(p)], Yt[i, : len(p)] = X[p], Y[p]
        cells[at: at + len(p)] = np.c_[np.full(len(p), i), np.arange(len(p))]
        at += len(p)
    return Xt, Yt, cells


def _chunks(index: np.ndarray, piece: np.ndarray, size: int) -> np.ndarray:
    """A piece label per bin of ``index`` that also starts anew every ``size`` bins."""
    new = np.r_[True, (np.diff(index) != 1) | (np.diff(piece[index]) != 0)]
    run = np.cumsum(new) - 1
    pos = np.arange(len(index)) - np.flatnonzero(new)[run]
    label = np.empty(len(piece), np.int64)
    label[index] = run * (len(index) + 1) + pos // size
    return label


def _fit(dec, X, Ys, piece, train, *, trials, n_lags, alpha, cell, hidden_size, max_epochs,
         chunk, random_state, device, info):
    from ...nn.kalman import KalmanDecoder
    from ...nn.recurrent import RNNDecoder
    from ...nn.wiener import WienerFilter

    if dec == "kalman":
        return KalmanDecoder(device=device).fit(*_as_trials(X, Ys, piece, train)[:2])
    if dec == "rnn":
        labels = piece if trials or chunk is None else _chunks(train, piece, chunk)
        rnn = RNNDecoder(cell, hidden_size=hidden_size, max_epochs=max_epochs, device=device,
                         random_state=random_state)
        rnn.fit(*_as_trials(X, Ys, labels, train)[:2])
        info["rnn_epochs"].append(int(rnn.n_iter_))
        return rnn
    alphas = [float(alpha)] if isinstance(alpha, numbers.Real) else [float(a) for a in alpha]
    best = alphas[0]
    if len(alphas) > 1:
        cut = int(0.8 * len(train))
        if trials:  # the last fifth of the training trials, whole
            starts = np.flatnonzero(np.r_[True, np.diff(piece[train]) != 0])
            inner = starts[starts > 0]
            cut = int(inner[np.argmin(np.abs(inner - cut))]) if inner.size else cut
        fit_part, val_part = _as_trials(X, Ys, piece, train[:cut]), \
            _as_trials(X, Ys, piece, train[cut:])
        scores = []
        for a in alphas:
            wf = WienerFilter(n_lags=n_lags, alpha=a, device=device).fit(*fit_part[:2])
            try:
                scores.append(wf.score(*val_part[:2]))
            except ValueError:  # validation part shorter than n_lags: nothing to score
                scores.append(-np.inf)
        best = alphas[int(np.argmax(scores))]
    info["wiener_alpha"].append(best)
    return WienerFilter(n_lags=n_lags, alpha=best, device=device).fit(
        *_as_trials(X, Ys, piece, train)[:2])


# ---------------------------------------------------------------------- outputs
def _predictions_array(data, pred, Y, fold_of, ok, decoders, per_channel, attrs):
    chans = data["channel_labels"]
    coords = {"decoder": decoders, "channel": chans,
              "r2": (("decoder", "channel"), per_channel)}
    if not data["trials"]:
        return xr.DataArray(
            pred, dims=("decoder", "time", "channel"), name="sequence_predictions",
            coords={**coords, "time": data["times"], "observed": (("time", "channel"), Y),
                    "fold": ("time", fold_of), "sequence": ("time", data["piece"]),
                    "scored": ("time", ok)}, attrs=attrs)
    n_tr, n_t = data["n_trials"], len(data["rel_time"])
    full = np.full((len(decoders), n_tr, n_t, Y.shape[1]), np.nan)
    obs = np.full((n_tr, n_t, Y.shape[1]), np.nan)
    tr, tt = data["piece"], data["time_index"]
    full[:, tr, tt], obs[tr, tt] = pred, Y
    fold = np.zeros(n_tr, np.int64)
    fold[tr] = fold_of
    return xr.DataArray(
        full, dims=("decoder", "trial", "time", "channel"), name="sequence_predictions",
        coords={**coords, **data["trial_coords"], "time": data["rel_time"],
                "observed": (("trial", "time", "channel"), obs), "fold": ("trial", fold)},
        attrs=attrs)


def _shown_range(predictions: xr.DataArray, window):
    """The figure's time range: ``window``, else the first 1,000 bins (continuous)."""
    if "trial" in predictions.dims:
        return None
    if window is not None:
        return tuple(window)
    t = predictions["time"].values
    return None if t.size <= 1000 else (float(t[0]), float(t[999]) + 1e-9)
