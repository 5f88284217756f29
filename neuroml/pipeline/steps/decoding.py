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

__all__ = ["decode_condition"]

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
