"""Decoding steps: ``decode_condition`` (one label per trial) and ``decode_over_time``."""

from __future__ import annotations

import numbers

import numpy as np
import xarray as xr

from ..._validation import Interval, Options
from ...errors import RecordingError
from ..constraints import ListOf, Pair
from ..registry import Input, Output, Param, register_step
from ._common import COLUMN, trial_labels

__all__ = ["decode_condition", "decode_over_time", "max_statistic_pvalues"]

_CS = [Interval(numbers.Integral, 1, None), ListOf((Interval(numbers.Real, 0, None, "neither"),))]


def _restrict(epochs: xr.DataArray, time_window, recording_id: str) -> xr.DataArray:
    if time_window is None:
        return epochs
    t = epochs["time"].values
    keep = (t >= time_window[0]) & (t < time_window[1])
    if not keep.any():
        raise RecordingError(
            f"Recording '{recording_id}': no time bin centre lies in time_window "
            f"{list(time_window)}; bin centres span {t.min():g} .. {t.max():g} s."
        )
    return epochs.isel(time=np.flatnonzero(keep))


def _folds(y: np.ndarray, cv: int, recording_id: str, label: str) -> int:
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < 2:
        raise RecordingError(
            f"Recording '{recording_id}': a class of {label!r} has a single trial; "
            f"cross-validated decoding needs at least 2 trials per class (counts: "
            f"{counts.tolist()})."
        )
    return int(min(cv, counts.min()))


@register_step(
    "decode_condition",
    inputs={"epochs": Input("epochs", "(trial, time, unit) epochs with the label as a trial "
                                      "coordinate")},
    outputs={
        "decoding": Output("metrics", "cross-validated accuracy, chance level, balanced "
                                      "accuracy, classes, folds, chosen C"),
        "confusion": Output("array", "(true, predicted) trial counts of the held-out "
                                     "predictions"),
        "predictions": Output("array", "(trial,) held-out prediction of every trial, the true "
                                       "label as a coordinate"),
        "confusion_matrix": Output("figure", "confusion matrix, rows normalised"),
    },
    params={
        "label": Param(COLUMN, "condition",
                       "trial column to decode (a list: the first present)"),
        "features": Param([Options(("mean", "flatten"))], "mean",
                          "mean: each unit's activity averaged over the window (trial x "
                          "unit); flatten: every time bin of every unit (trial x time*unit)"),
        "time_window": Param([Pair(), None], None,
                             "[start, stop) in seconds of the bins used (bin centres); all "
                             "when null"),
        "cv": Param([Interval(numbers.Integral, 2, None)], 5,
                    "outer stratified folds giving the held-out predictions (at most the "
                    "smallest class size)"),
        "inner_cv": Param([Interval(numbers.Integral, 2, None)], 3,
                          "folds LogisticDecoderCV uses to choose C inside each outer fold"),
        "Cs": Param(_CS, 10, "regularisation strengths: a count (logspace(-4, 4, Cs)) or the "
                             "values"),
        "standardize": Param(["boolean"], True,
                             "z-score each feature with the training folds' mean and s.d."),
        "class_weight": Param([Options(("balanced",)), None], None,
                              "'balanced' weighs classes inversely to their frequency"),
        "random_state": Param([Interval(numbers.Integral, 0, None)], 0,
                              "seed of the outer fold shuffle"),
    },
)
def decode_condition(ctx, *, epochs, label, features, time_window, cv, inner_cv, Cs,
                     standardize, class_weight, random_state):
    """Decode a trial label from trial activity with LogisticDecoderCV (nested cross-validation).

    The outer stratified folds give every trial a held-out prediction (accuracy,
    confusion matrix); inside each outer fold ``LogisticDecoderCV`` picks ``C`` by its
    own cross-validation on the training trials only, so the accuracy is unbiased by
    the choice of ``C``. Chance is the majority-class rate (what always guessing the
    most frequent label scores).
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from ...decoding import LogisticDecoderCV
    from ...plotting import plot_confusion_matrix

    name, y = trial_labels(epochs, label, ctx.recording_id)
    data = _restrict(epochs, time_window, ctx.recording_id).astype(np.float64)
    if features == "mean":
        X = data.mean("time").transpose("trial", ...).values
    else:
        X = data.transpose("trial", "time", ...).values.reshape(data.sizes["trial"], -1)
    n_folds = _folds(y, cv, ctx.recording_id, name)
    train_min = int(np.unique(y, return_counts=True)[1].min()) * (n_folds - 1) // n_folds
    inner = int(max(2, min(inner_cv, train_min)))
    dec = LogisticDecoderCV(Cs=Cs if isinstance(Cs, int) else list(Cs), cv=inner,
                            class_weight=class_weight, device=ctx.device,
                            random_state=random_state)
    model = make_pipeline(StandardScaler(), dec) if standardize else dec
    outer = StratifiedKFold(n_folds, shuffle=True, random_state=random_state)
    pred = cross_val_predict(model, X, y, cv=outer)
    classes, counts = np.unique(y, return_counts=True)
    cm = confusion_matrix(y, pred, labels=classes)
    final = model.fit(X, y)
    chosen = final[-1] if standardize else final
    metrics = {
        "label": name,
        "accuracy": float(np.mean(pred == y)),
        "chance": float(counts.max() / counts.sum()),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
        "chance_balanced": float(1.0 / classes.size),
        "n_trials": int(y.size),
        "n_classes": int(classes.size),
        "n_folds": n_folds,
        "features": features,
        "n_features": int(X.shape[1]),
        "C": float(chosen.C_),
    }
    confusion = xr.DataArray(cm, dims=("true", "predicted"),
                             coords={"true": classes, "predicted": classes}, name="confusion",
                             attrs={"label": name})
    predictions = xr.DataArray(pred, dims="trial", coords={"trial": epochs["trial"].values,
                                                           name: ("trial", y)},
                               name="predictions", attrs={"label": name})
    ax = plot_confusion_matrix(confusion)
    ax.set_title(f"{name}: accuracy {metrics['accuracy']:.2f} (chance {metrics['chance']:.2f})")
    return {"decoding": metrics, "confusion": confusion, "predictions": predictions,
            "confusion_matrix": ax.figure}


def max_statistic_pvalues(score: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Family-wise corrected p-value per time bin from a max-statistic permutation null.

    ``p[t] = (1 + #{k : max_t' null[k, t'] >= score[t]}) / (1 + n_permutations)``: each
    bin's score is compared with the distribution of the *largest* score over all bins
    of each permutation, so the chance that any bin of a null effect reaches
    ``p <= alpha`` is at most ``alpha`` (Nichols & Holmes 2002).

    Parameters
    ----------
    score : ndarray of shape (n_times,)
        Score on the true labels.
    null : ndarray of shape (n_permutations, n_times)
        Scores on permuted labels.

    Returns
    -------
    pvalues : ndarray of shape (n_times,)
    """
    score = np.asarray(score, dtype=np.float64)
    peak = np.asarray(null, dtype=np.float64).max(axis=1)
    exceed = (peak[:, None] >= score[None, :]).sum(axis=0)
    return (1.0 + exceed) / (1.0 + peak.size)


@register_step(
    "decode_over_time",
    inputs={"epochs": Input("epochs", "(trial, time, unit) epochs with the label as a trial "
                                      "coordinate")},
    outputs={
        "decoding_scores": Output("array", "(fold, time) held-out score of the decoder "
                                           "trained and tested at each time bin"),
        "decoding_pvalues": Output("array", "(time,) permutation p-value of each bin "
                                            "(family-wise corrected with null: max)"),
        "decoding_null": Output("array", "(permutation, time) scores with shuffled labels",
                                save=False),
        "decoding_over_time": Output("metrics", "peak score and time, chance, bins with "
                                                "p <= alpha, first such time"),
        "temporal_generalization": Output("array", "(fold, train_time, test_time) scores of "
                                                   "each bin's decoder at every bin"),
        "decoding_over_time_figure": Output("figure", "score over time +- s.e.m. across "
                                                      "folds, chance, significant bins"),
        "temporal_generalization_figure": Output("figure", "train time x test time score "
                                                           "matrix"),
    },
    params={
        "label": Param(COLUMN, "condition",
                       "trial column to decode (a list: the first present)"),
        "C": Param([Interval(numbers.Real, 0, None, "neither")], 0.1,
                   "inverse L2 penalty of the per-bin LogisticDecoder"),
        "cv": Param([Interval(numbers.Integral, 2, None)], 5,
                    "stratified folds over trials (shuffled with random_state; at most the "
                    "smallest class size)"),
        "scoring": Param([Options(("accuracy", "balanced_accuracy"))], "accuracy",
                         "score per bin"),
        "n_permutations": Param([Interval(numbers.Integral, 0, None)], 100,
                                "label permutations for the null (0: no p-values); the "
                                "smallest p-value is 1 / (n_permutations + 1)"),
        "correction": Param([Options(("max", "none"))], "max",
                            "max: each bin against the null of the best bin of each "
                            "permutation (family-wise corrected over bins); none: each bin "
                            "against its own null (uncorrected)"),
        "alpha": Param([Interval(numbers.Real, 0, 1, "neither")], 0.05,
                       "significance level for the metrics and the figure"),
        "generalize": Param(["boolean"], True, "also compute the temporal-generalisation "
                                               "matrix"),
        "random_state": Param([Interval(numbers.Integral, 0, None)], 0,
                              "seed of the fold shuffle and the permutations"),
    },
)
def decode_over_time(ctx, *, epochs, label, C, cv, scoring, n_permutations, correction, alpha,
                     generalize, random_state):
    """Decode a trial label at every time bin (TimeResolvedDecoder) with a permutation null.

    A ``LogisticDecoder`` is trained and tested (stratified k-fold over trials) at
    each time bin; the labels are permuted ``n_permutations`` times and the whole
    time course recomputed for each (one batched solve), giving a p-value per bin —
    family-wise corrected over bins with the max statistic (``correction: max``) or
    not (``none``). The temporal-generalisation matrix tests each bin's decoder at every
    other bin.
    """
    from sklearn.model_selection import StratifiedKFold

    from ...decoding import LogisticDecoder, TimeResolvedDecoder, permutation_test
    from ...plotting import plot_decoding_over_time, plot_temporal_generalization

    name, y = trial_labels(epochs, label, ctx.recording_id)
    data = epochs.astype(np.float64)
    folds = StratifiedKFold(_folds(y, cv, ctx.recording_id, name), shuffle=True,
                            random_state=random_state)

    def decoder(generalize_: bool = False):
        return TimeResolvedDecoder(LogisticDecoder(C=C, device=ctx.device), cv=folds,
                                   scoring=scoring, generalize=generalize_, device=ctx.device)

    classes, counts = np.unique(y, return_counts=True)
    chance = float(counts.max() / counts.sum()) if scoring == "accuracy" else 1.0 / classes.size
    times = data["time"].values
    attrs = {"label": name, "scoring": scoring, "chance": chance,
             "align_to": epochs.attrs.get("align_to", "")}
    if n_permutations:
        res = permutation_test(decoder(), data, y, n_permutations=n_permutations, cv=folds,
                               scoring=scoring, random_state=random_state)
        fold_scores = xr.DataArray(np.asarray(res.fold_scores), dims=("fold", "time"),
                                   coords={"time": times})
        null_scores = xr.DataArray(np.asarray(res.null), dims=("permutation", "time"),
                                   coords={"time": times}, name="decoding_null", attrs=attrs)
        score = np.asarray(res.score, dtype=np.float64)
        pv = (max_statistic_pvalues(score, null_scores.values) if correction == "max"
              else np.asarray(res.pvalue, dtype=np.float64))
        pvalues = xr.DataArray(pv, dims="time", coords={"time": times}, name="decoding_pvalues",
                               attrs={**attrs, "correction": correction,
                                      "n_permutations": n_permutations})
    else:
        fitted = decoder().fit(data, y)
        fold_scores = xr.DataArray(np.asarray(fitted.scores_), dims=("fold", "time"),
                                   coords={"time": times})
        score = fold_scores.values.mean(0)
        null_scores = pvalues = None
    fold_scores = fold_scores.assign_attrs(attrs).rename("decoding_scores")

    peak = int(np.argmax(score))
    # p <= alpha: the permutation test is exact at level alpha then (p takes the values
    # k / (n_permutations + 1), so '<' would make alpha = 1/(n+1) unreachable)
    significant = (pvalues.values <= alpha) if pvalues is not None else np.zeros(score.size, bool)
    metrics = {
        "label": name,
        "scoring": scoring,
        "chance": chance,
        "peak_score": float(score[peak]),
        "peak_time": float(times[peak]),
        "mean_score": float(score.mean()),
        "n_significant_bins": int(significant.sum()),
        "first_significant_time": float(times[significant][0]) if significant.any() else None,
        "min_pvalue": float(pvalues.values.min()) if pvalues is not None else None,
        "correction": correction if n_permutations else "no permutations",
        "n_permutations": int(n_permutations),
        "alpha": float(alpha),
        "n_trials": int(y.size),
        "n_folds": int(folds.n_splits),
    }
    ax = plot_decoding_over_time(fold_scores, chance=chance,
                                 pvalues=None if pvalues is None else pvalues.values,
                                 alpha=alpha, label=name)
    what = "max-statistic" if correction == "max" else "per-bin"
    ax.set_title(f"{name}: {what} permutation null, bins with p \u2264 {alpha:g} marked"
                 if n_permutations else name)
    gen = gen_fig = None
    if generalize:
        fitted = decoder(True).fit(data, y)
        gen = xr.DataArray(np.asarray(fitted.scores_), dims=("fold", "train_time", "test_time"),
                           coords={"train_time": times, "test_time": times},
                           name="temporal_generalization", attrs=attrs)
        gen_fig = plot_temporal_generalization(gen, chance=chance).figure
    return {"decoding_scores": fold_scores, "decoding_pvalues": pvalues,
            "decoding_null": null_scores, "decoding_over_time": metrics,
            "temporal_generalization": gen, "decoding_over_time_figure": ax.figure,
            "temporal_generalization_figure": gen_fig}
