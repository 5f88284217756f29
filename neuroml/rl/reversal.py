"""Reversal points and asymmetries of dopamine reward responses (Dabney et al. 2020).

The second step of the distributional analysis (:mod:`neuroml.rl.dopamine`): per cell,
the reward at which its response changes sign (the reversal point) and the asymmetry
``tau = s+ / (s+ + s-)`` of its slopes on either side, from independent halves of the
trials (:func:`reversal_point_analysis`), and their correlation across cells
(:func:`reversal_correlation`). The procedure follows the authors' released MATLAB
analysis (``EstimateZeroCrossings.m``, ``EstimateScaleFactors.m``, ``splitIndices.m``);
every departure is named where it is made.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import Interval, check_param, check_same_index, check_vector
from ..device import seed_from
from ..errors import ParameterError

__all__ = ["reversal_point_analysis", "reversal_correlation"]


_OWNER = "reversal_point_analysis"


def _sorted_labels(values: np.ndarray):
    """Distinct labels, sorted (by type name first when types are mixed), and codes."""
    try:
        return np.unique(values, return_inverse=True)
    except TypeError:  # e.g. 1 and "1": not comparable, so sort by type, then value
        pass
    items = values.tolist()
    try:
        levels = sorted(dict.fromkeys(items), key=lambda v: (type(v).__name__, v))
    except TypeError:
        raise ParameterError(
            f"The 'cell' parameter of {_OWNER} must hold hashable labels that sort within "
            f"each type (numbers, strings); got types "
            f"{sorted({type(v).__name__ for v in items})}.") from None
    index = {v: i for i, v in enumerate(levels)}
    out = np.empty(len(levels), dtype=object)
    out[:] = levels
    return out, np.array([index[v] for v in items], dtype=np.int64)


def _crossings(y, cell, mag, n_cells, U, mags):
    """Model-free reversal points (``EstimateZeroCrossings.m``, count method).

    For each boundary ``b`` between magnitude ``b-1`` and ``b`` (``b = 0 .. K``) count the
    trials at or above it with a positive response plus those below it with a negative
    one; the best boundary is interpolated between its two magnitudes' utilities with
    weights set by how close the neighbouring boundaries' counts are. Ties between
    boundaries take the middle one (the paper breaks them with random noise). A best
    boundary below the smallest (above the largest) magnitude gives that magnitude (the
    paper: that utility + 0.01 / - 0.1). Departure: the paper's cells have trials at
    every magnitude. A cell whose trials here cover fewer than two magnitudes, or that
    has no trials at a magnitude next to a best boundary, gets NaN: the boundaries on
    either side of a magnitude without trials always tie, so the count cannot tell where
    in that gap (or beyond the magnitudes it has) the sign changes, and the middle of
    the ties would be a guess.
    """
    K = U.size
    pos = np.zeros((n_cells, K))
    neg = np.zeros((n_cells, K))
    np.add.at(pos, (cell, mag), y > 0)
    np.add.at(neg, (cell, mag), y < 0)
    above = np.concatenate([np.cumsum(pos[:, ::-1], 1)[:, ::-1], np.zeros((n_cells, 1))], 1)
    below = np.concatenate([np.zeros((n_cells, 1)), np.cumsum(neg, 1)], 1)
    crit = above + below  # (cells, K + 1)
    best = crit == crit.max(1, keepdims=True)
    rank = np.cumsum(best, 1)
    b = np.argmax(best & (rank == best.sum(1, keepdims=True) // 2 + 1), 1)
    inner = np.clip(b, 1, K - 1)
    rows = np.arange(n_cells)
    d1 = np.abs(crit[rows, inner] - crit[rows, inner - 1])
    d2 = np.abs(crit[rows, inner + 1] - crit[rows, inner])
    wl = np.where(d1 + d2 > 0, d2 / np.where(d1 + d2 > 0, d1 + d2, 1.0), 0.5)
    wl = np.where(b == 0, 1.0, np.where(b == K, 0.0, wl))
    util = wl * U[inner - 1] + (1 - wl) * U[inner]
    magn = wl * mags[inner - 1] + (1 - wl) * mags[inner]
    seen = np.zeros((n_cells, K), dtype=bool)
    seen[cell, mag] = True
    gap = np.zeros((n_cells, K + 1), dtype=bool)  # boundary b next to a magnitude without trials
    gap[:, 1:] |= ~seen
    gap[:, :-1] |= ~seen
    few = (seen.sum(1) < 2) | (best & gap).any(1)
    util[few] = magn[few] = np.nan
    return util, magn


def _slopes(y, cell, mag, n_cells, U, crossing):
    """No-intercept slopes of response on ``utility - reversal`` on each side.

    ``EstimateScaleFactors.m`` with the linear model: the negative side holds the trials
    at or below the reversal point, the positive side those at or above; a side whose
    utilities all equal the reversal point has no slope (NaN).
    """
    x = U[mag] - crossing[cell]
    out = []
    for side in (x >= 0, x <= 0):
        sxy = np.bincount(cell, weights=np.where(side, x * y, 0.0), minlength=n_cells)
        sxx = np.bincount(cell, weights=np.where(side, x * x, 0.0), minlength=n_cells)
        out.append(np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), np.nan))
    return out[0], out[1]


def _halves(cell, mag, K, rng):
    """One random half of each (cell, magnitude) group's trials (``splitIndices.m``).

    ``floor(n / 2)`` trials of each group go to the first half, the rest to the second.
    """
    group = cell * K + mag
    order = np.lexsort((rng.random(group.size), group))
    sorted_group = group[order]
    starts = np.searchsorted(sorted_group, sorted_group, side="left")
    rank = np.arange(group.size) - starts
    size = np.bincount(group)[sorted_group]
    first = np.zeros(group.size, dtype=bool)
    first[order] = rank < size // 2
    return first


def reversal_point_analysis(responses, magnitude, cell, *, split_halves=True, n_splits=1,
                            random_state=None) -> pd.DataFrame:
    """Reversal point and asymmetry of each cell's reward responses (Dabney et al. 2020).

    1. Utility axis: the mean response to each magnitude, over all trials of each cell,
       averaged over cells (the population's empirical utility function).
    2. Reversal point: where the cell's responses change sign, found without a model
       (the boundary between magnitudes with the most positive responses above it and
       negative ones below it, interpolated on the utility axis; see ``_crossings``),
       reported on the utility axis and mapped back to magnitude units (the same
       interpolation between the two magnitudes).
    3. Asymmetry: ``tau = s+ / (s+ + s-)`` with ``s+`` and ``s-`` the no-intercept
       slopes of the responses against ``utility - reversal point`` on each side of the
       cell's own reversal point.

    With ``split_halves`` (the paper's test), each cell's trials of each magnitude are
    split at random into halves: the reversal point comes from the first half, the
    asymmetry (with its own reversal point) from the second, so their noise is
    independent. Do not average the two over several splits and then correlate them:
    every trial then serves both estimates and the shared noise returns (on a simulated
    classical-TD population with the real data's noise, one split gives r = 0.0 +- 0.18,
    averaging 10 splits r = 0.64, no split r = 0.92). Correlate within each split
    (:func:`reversal_correlation`).

    Half the trials bound what one split can show. On the 40 neurons of Eshel et al. the
    reversal points of two halves correlate at r = 0.77 and their asymmetries at only
    0.46, so a perfect relation between the cells' true values would appear as
    r = sqrt(0.77 * 0.46) = 0.6 on average (attenuation by independent errors); the
    within-split r is 0.49 +- 0.11, about 0.8 once corrected. A population simulated to be
    exactly distributional (reversal point = tau-expectile, with these cells' asymmetries,
    gains, trial counts and resampled residuals) gives 0.43 +- 0.17, a classical-TD one
    built the same way 0.04 +- 0.21. The authors' code runs this analysis on one split.

    Parameters
    ----------
    responses : array-like of shape (n_trials,)
        One response per trial, e.g. ``reward_responses(...)["response"]``.
    magnitude : array-like of shape (n_trials,)
        The reward magnitude of each trial (at least 3 distinct values).
    cell : array-like of shape (n_trials,)
        The cell each trial belongs to: any labels but NaN or None (labels of mixed
        types, e.g. ``1`` and ``"1"``, are distinct cells, sorted by type, then value).
        The three are paired by position: pandas Series among them must share one
        index.
    split_halves : bool, default=True
        Estimate reversal point and asymmetry from independent halves.
    n_splits : int, default=1
        Random splits (with ``split_halves``).
    random_state : int, RandomState, Generator or None, default=None
        Seed of the splits.

    Returns
    -------
    result : pandas.DataFrame
        Indexed by ``cell`` (by ``(split, cell)`` when ``n_splits > 1``), with columns
        ``reversal_point`` (magnitude units), ``reversal_utility`` (utility axis),
        ``tau``, ``slope_pos``, ``slope_neg`` (per unit of utility), ``n_trials``.
        ``tau`` lies outside [0, 1] when a slope has the wrong sign. A value that cannot
        be estimated is NaN, with one ``RuntimeWarning`` naming the cells: a reversal
        point from trials at fewer than 2 magnitudes, or none at a magnitude next to
        where the responses change sign (ties through a magnitude without trials); a
        ``tau`` without its own reversal point, or whose reversal point lies at the
        smallest or largest magnitude (a side without trials). ``attrs["magnitudes"]``
        and ``attrs["utility"]`` hold the utility axis.

    Raises
    ------
    ParameterError
        Bad input (lengths, NaN, missing cell labels, Series on different indexes, fewer
        than 3 magnitudes), or no cell's reversal point can be estimated.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mags = np.tile([1.0, 2.0, 4.0, 8.0], 50)
    >>> taus = {"a": 0.2, "b": 0.8}
    >>> resp, cells = [], []
    >>> for c, t in taus.items():
    ...     x = mags - (2.0 if t < 0.5 else 5.0)
    ...     resp.append(np.where(x > 0, t, 1 - t) * x + 0.1 * rng.normal(size=x.size))
    ...     cells += [c] * x.size
    >>> res = reversal_point_analysis(np.concatenate(resp), np.tile(mags, 2), cells,
    ...                               split_halves=False)
    >>> res["reversal_point"].round(0).tolist(), bool(res["tau"]["a"] < res["tau"]["b"])
    ([2.0, 6.0], True)
    """
    check_param("split_halves", split_halves, ["boolean"], _OWNER)
    check_param("n_splits", n_splits, [Interval(numbers.Integral, 1, None)], _OWNER)
    check_param("random_state", random_state, ["random_state"], _OWNER)
    check_same_index({"responses": responses, "magnitude": magnitude, "cell": cell}, _OWNER)
    y = check_vector(responses, "responses", _OWNER, per="trial", numeric=True)
    m = check_vector(magnitude, "magnitude", _OWNER, per="trial", numeric=True)
    c = check_vector(cell, "cell", _OWNER, per="trial", numeric=False)
    if not y.size == m.size == c.size:
        raise ParameterError(
            f"{_OWNER}: 'responses', 'magnitude' and 'cell' must have one entry per trial; got "
            f"lengths {y.size}, {m.size} and {c.size}.")
    if y.size == 0:
        raise ParameterError(f"{_OWNER}: no trials ('responses', 'magnitude' and 'cell' are "
                             "empty).")
    for name, v in (("responses", y), ("magnitude", m)):
        if not np.all(np.isfinite(v)):
            raise ParameterError(
                f"The '{name}' parameter of {_OWNER} has {int(np.sum(~np.isfinite(v)))} NaN or "
                "infinite value(s); pass reward trials only.")
    missing = pd.isna(c)
    if missing.any():
        raise ParameterError(
            f"The 'cell' parameter of {_OWNER} has {int(missing.sum())} missing label(s) (NaN or "
            f"None; the first at trial index {int(np.flatnonzero(missing)[0])}); every trial "
            "needs the label of its cell.")
    mags, mag = np.unique(m, return_inverse=True)
    cells, code = _sorted_labels(c)
    K, C = mags.size, cells.size
    if K < 3:
        raise ParameterError(
            f"{_OWNER} needs at least 3 distinct reward magnitudes to place a reversal point "
            f"between them. Got {K}: {mags.tolist()}.")
    total = np.zeros((C, K))
    count = np.zeros((C, K))
    np.add.at(total, (code, mag), y)
    np.add.at(count, (code, mag), 1)
    with np.errstate(invalid="ignore"):
        U = np.nanmean(np.where(count > 0, total / np.where(count > 0, count, 1), np.nan), 0)
    n_trials = np.bincount(code, minlength=C)
    rng = np.random.default_rng(seed_from(random_state))
    frames, few_own = [], []
    for _ in range(n_splits if split_halves else 1):
        first = _halves(code, mag, K, rng) if split_halves else np.ones(y.size, dtype=bool)
        second = ~first if split_halves else first
        util, magn = _crossings(y[first], code[first], mag[first], C, U, mags)
        own, _ = _crossings(y[second], code[second], mag[second], C, U, mags)
        few_own.append(np.isnan(own))
        s_pos, s_neg = _slopes(y[second], code[second], mag[second], C, U, own)
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = np.where(s_pos + s_neg != 0, s_pos / (s_pos + s_neg), np.nan)
        frames.append(pd.DataFrame(
            {"reversal_point": magn, "reversal_utility": util, "tau": tau,
             "slope_pos": s_pos, "slope_neg": s_neg, "n_trials": n_trials},
            index=pd.Index(cells, name="cell")))
    out = frames[0] if len(frames) == 1 else pd.concat(frames, keys=range(len(frames)),
                                                       names=["split", "cell"])
    _report_missing(out, cells, split_halves, np.concatenate(few_own))
    out.attrs.update(magnitudes=mags.tolist(), utility=U.tolist(),
                     split_halves=bool(split_halves))
    return out


def _names(labels) -> str:
    labels = list(labels)
    return f"{labels[:8]}{' ...' if len(labels) > 8 else ''}"


def _report_missing(out: pd.DataFrame, cells, split_halves: bool, few_own) -> None:
    """Raise when no reversal point could be estimated; else one warning for NaN cells.

    ``few_own``: rows whose asymmetry half has trials at fewer than two magnitudes.
    """
    level = out.index.get_level_values("cell")
    no_rp = np.isnan(out["reversal_point"].to_numpy())
    no_tau = np.isnan(out["tau"].to_numpy())
    half = " in the half of its trials used for it" if split_halves else ""
    if no_rp.all():
        raise ParameterError(
            f"{_OWNER}: no cell's reversal point can be estimated: each needs trials at 2 or "
            f"more magnitudes{half}, including those next to where its responses change sign"
            + (" (with split_halves, floor(n / 2) of a cell's n trials at each magnitude go "
               "to that half, so it needs at least 2 trials at each of 2 magnitudes; pass more "
               "trials or split_halves=False)." if split_halves else "."))
    if not (no_rp | no_tau).any():
        return
    rows = "" if len(out) == len(cells) else f" in {int((no_rp | no_tau).sum())} of {len(out)} " \
        "(split, cell) rows"
    parts = []
    if no_rp.any():
        bad = pd.unique(level[no_rp])
        parts.append(f"the reversal point of {len(bad)} cell(s) {_names(bad)} (trials at fewer "
                     f"than 2 magnitudes{half}, or none at a magnitude next to where the "
                     "responses change sign)")
    if (no_tau & few_own).any():
        bad = pd.unique(level[no_tau & few_own])
        parts.append(f"the asymmetry tau of {len(bad)} cell(s) {_names(bad)} (no reversal "
                     "point of its own" + (" in the other half" if split_halves else "")
                     + ": too few trials, as above)")
    if (no_tau & ~few_own).any():
        bad = pd.unique(level[no_tau & ~few_own])
        parts.append(f"the asymmetry tau of {len(bad)} cell(s) {_names(bad)} (no trials on one "
                     "side of the cell's own reversal point, which then lies at the smallest or "
                     "largest magnitude; or the two slopes cancel)")
    warnings.warn(
        f"{_OWNER}: {len(pd.unique(level[no_rp | no_tau]))} of {len(cells)} cells could not be "
        f"estimated{rows} and are NaN there: {'; '.join(parts)}. reversal_correlation leaves "
        "them out.", RuntimeWarning, stacklevel=3)


def reversal_correlation(result: pd.DataFrame) -> pd.DataFrame:
    """Pearson correlation across cells of reversal point and asymmetry, per split.

    Uses the reversal point on the utility axis (as the paper) and the cells whose
    ``tau`` is finite and in [0, 1] (a ``tau`` outside means a slope of the wrong sign:
    the cell does not reverse as the model assumes). Departure: the authors' code
    correlates every cell with finite values (``corr(..., 'rows', 'complete')``), and
    caps a reversal point beyond the largest magnitude just below it, so that cell keeps
    a ``tau``. On the 40 neurons of Eshel et al. the mean over splits is the same (0.49
    there and here), the spread larger (sd 0.17 against 0.11): a cell with a wrong-sign
    slope (``tau`` of -0.4 or 5.9 here) can dominate a Pearson r.

    Parameters
    ----------
    result : pandas.DataFrame
        The output of :func:`reversal_point_analysis`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``split`` (one row for a single split): ``r``, ``p_value`` (two-sided,
        ``scipy.stats.pearsonr``), ``n_cells``. Average ``r`` over splits for a summary
        that no longer depends on one random split. A split with fewer than 3 usable
        cells, or whose usable cells all share one reversal point or one ``tau``, has no
        correlation: NaN, with one ``RuntimeWarning``.

    Raises
    ------
    ParameterError
        ``result`` is not a DataFrame with columns ``tau`` and ``reversal_utility`` (and,
        with several splits, an index level ``split``), or no split has a correlation
        (e.g. fewer than 3 usable cells).
    """
    owner = "reversal_correlation"
    if not isinstance(result, pd.DataFrame):
        raise ParameterError(f"The 'result' parameter of {owner} must be the DataFrame of "
                             f"reversal_point_analysis; got {type(result).__name__}.")
    lacking = [k for k in ("tau", "reversal_utility") if k not in result.columns]
    if lacking:
        raise ParameterError(f"The 'result' parameter of {owner} lacks the column(s) {lacking}; "
                             "it must be the DataFrame of reversal_point_analysis (columns "
                             "'reversal_utility' and 'tau').")
    multi = isinstance(result.index, pd.MultiIndex)
    if multi and "split" not in result.index.names:
        raise ParameterError(f"The 'result' parameter of {owner} has a MultiIndex without a "
                             f"'split' level (levels {list(result.index.names)}); pass the "
                             "DataFrame of reversal_point_analysis.")
    splits = result.groupby(level="split") if multi else [(0, result)]
    rows, failed = {}, []
    for key, part in splits:
        tau, rp = part["tau"].to_numpy(float), part["reversal_utility"].to_numpy(float)
        ok = np.isfinite(tau) & np.isfinite(rp) & (tau >= 0) & (tau <= 1)
        if ok.sum() < 3 or np.ptp(tau[ok]) == 0 or np.ptp(rp[ok]) == 0:
            rows[key] = (np.nan, np.nan, int(ok.sum()))
            failed.append(key)
            continue
        r, p = stats.pearsonr(rp[ok], tau[ok])
        rows[key] = (float(r), float(p), int(ok.sum()))
    why = ("a correlation needs at least 3 cells with a finite reversal point and a tau in "
           "[0, 1], not all sharing one reversal point or one tau")
    if len(failed) == len(rows):
        counts = sorted({rows[k][2] for k in failed})
        raise ParameterError(f"{owner}: {why}; " + (
            f"the result has {counts[0] if counts else 0} usable cells" if len(rows) <= 1 else
            f"none of the {len(rows)} splits has (usable cells per split: {counts})") + ".")
    if failed:
        warnings.warn(f"{owner}: {len(failed)} of {len(rows)} splits ({_names(failed)}) have no "
                      f"correlation and give NaN: {why}.", RuntimeWarning, stacklevel=2)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["r", "p_value", "n_cells"]
                                  ).rename_axis("split")
