"""Choice-model steps: ``fit_choice_model`` (Q-learning per session) and ``rpe_response``.

``fit_choice_model`` fits :class:`~neuroml.rl.choice.QLearning` to the choices and
rewards of one session's trials table and gives its parameters, NLL, AIC and BIC as
metrics (one row per session in ``summary.csv``), the per-trial values and RPEs as a
table, and a figure of the choice probability over trials. ``rpe_response`` regresses a
signal aligned to the outcome (spike counts or a photometry channel) on those RPEs with
:func:`~neuroml.rl.rpe_regression.rpe_regression`.
"""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd
import xarray as xr

from ..._validation import Interval, Options
from ...errors import ParameterError, RecordingError
from ..constraints import ListOf, MappingOf, Pair
from ..registry import Input, Output, Param, register_step
from ._common import COLUMN, pick_column

__all__ = ["fit_choice_model", "rpe_response"]

_NAMES = ("alpha", "alpha_neg", "beta", "forget", "bias", "perseveration")
_BOUNDED = MappingOf(r"alpha|alpha_neg|beta|forget|bias(_[1-9][0-9]*)?|perseveration(_rate)?",
                     "the model's parameters (alpha, alpha_neg, beta, forget, bias or bias_1 .., "
                     "perseveration, perseveration_rate)",
                     Pair(equal=True, names=("low", "high")))


def _session_choices(recording, choice, reward, no_response, options, reward_probabilities,
                     recording_id):
    """``choice``/``reward`` per trial (and reward probabilities) from the trials table."""
    from ...rl.choice_data import choices_from_trials

    trials = recording.trials
    if trials is None or len(trials) == 0:
        raise RecordingError(f"Recording '{recording_id}' has no trials table; "
                             "fit_choice_model needs one row per trial with choices and rewards.")
    column = pick_column(trials.columns, choice, "the choices", recording_id)
    rewards = [reward] if isinstance(reward, str) else list(reward)
    missing = [c for c in rewards if c not in trials.columns]
    if missing:
        raise RecordingError(f"Recording '{recording_id}' has no trials column(s) {missing} for "
                             f"the rewards; its columns: {sorted(map(str, trials.columns))}.")
    keep = list(reward_probabilities or [])
    if not all(c in trials.columns for c in keep):
        keep = []
    table = choices_from_trials(trials, choice=column, reward=rewards[0] if len(rewards) == 1
                                else rewards, options=options, no_response=no_response,
                                keep=keep)
    return column, table, keep


@register_step(
    "fit_choice_model",
    inputs={"recording": Input("recording", "the loaded session (trials with choices and "
                                            "rewards)")},
    outputs={
        "choice_model": Output("metrics", "fitted parameters, nll, aic, bic, answered trials, "
                                          "accuracy and mean P(choice) of the model; at_bound: "
                                          "the parameters fitted at a bound"),
        "choice_values": Output("table", "per trial: choice, reward, Q values, q_chosen, rpe, "
                                         "p_chosen, P of each option (p_0 ..)"),
        "choice_probability": Output("figure", "P(choice) over trials with the choices, rewards "
                                               "and reward-probability blocks"),
    },
    params={
        "choice": Param(COLUMN, ["animal_response", "choice"],
                        "trials column with the response (a list: the first present)"),
        "reward": Param([str, ListOf((str,))], ["rewarded_historyL", "rewarded_historyR"],
                        "one column with the chosen option's reward, or a list of columns, one "
                        "per option in option order, of which the chosen one is read"),
        "no_response": Param([ListOf((numbers.Real, str), min_len=0)], [2],
                             "response values meaning no response (left out of the "
                             "likelihood; AIND: 2); NaN always means none"),
        "options": Param([ListOf((numbers.Real, str)), None], None,
                         "response labels in option order (e.g. [LEFT, RIGHT]), which also "
                         "set the number of options; null: the responses are option numbers "
                         "0..K-1"),
        "reward_probabilities": Param([ListOf((str,)), None],
                                      ["reward_probabilityL", "reward_probabilityR"],
                                      "columns with each option's reward probability, for the "
                                      "figure's blocks (ignored when absent)"),
        "option_labels": Param([ListOf((str,)), None], None,
                               "names of the options for the figure (e.g. [left, right]); "
                               "null: option 0, option 1 .."),
        "parameters": Param([ListOf((Options(_NAMES),), unique=True, required=("alpha", "beta"))],
                            ["alpha", "beta"],
                            "the free parameters: alpha and beta, plus any of alpha_neg, "
                            "forget, bias, perseveration"),
        "q0": Param([Interval(numbers.Real, -np.inf, np.inf, closed="neither")], 0.5,
                    "initial value of every option"),
        "bounds": Param([_BOUNDED, None], None,
                        "{name: [low, high]} overriding the default bounds (alpha in [0, 1], "
                        "beta in [0, 50], bias and perseveration in [-5, 5])"),
        "n_starts": Param([Interval(numbers.Integral, 1, None)], 8,
                          "restarts of the maximum-likelihood fit (best kept)"),
        "max_iter": Param([Interval(numbers.Integral, 1, None)], 200,
                          "optimiser iterations per restart"),
        "random_state": Param([Interval(numbers.Integral, 0, None)], 0,
                              "seed of the restarts"),
    },
)
def fit_choice_model(ctx, *, recording, choice, reward, no_response, options,
                     reward_probabilities, option_labels, parameters, q0, bounds, n_starts, max_iter,
                     random_state):
    """Fit a Q-learning choice model (QLearning) to one session's choices by maximum likelihood.

    Choices and rewards come from the trials table (``choices_from_trials``); trials
    without a response are left out of the likelihood and change no value. The metrics
    hold the fitted parameters, the negative log-likelihood, AIC, BIC and the answered
    trials, so ``summary.csv`` of a folder of sessions is a table of learning rates.
    """
    from ...plotting.rl import plot_choice_probability
    from ...rl.choice import QLearning

    column, table, keep = _session_choices(recording, choice, reward, no_response, options,
                                           reward_probabilities, ctx.recording_id)
    c = table["choice"].to_numpy(dtype=np.float64)
    r = table["reward"].to_numpy(dtype=np.float64)
    model = QLearning(tuple(parameters), q0=q0, bounds=bounds,
                      n_options=len(options) if options else None, n_starts=n_starts,
                      max_iter=max_iter, device=ctx.device, random_state=random_state)
    model.fit(c, r)
    values = model.values(c, r).drop(columns=["subject", "trial"])
    values.index = table.index
    proba = np.asarray(model.predict_proba(c, r))
    for k in range(model.n_options_):
        values[f"p_{k}"] = proba[:, k]
    for col in keep:
        values[col] = table[col].to_numpy()
    answered = c >= 0
    row = model.summary_.iloc[0]
    metrics = {name: float(row[name]) for name in model.parameters_}
    metrics.update(
        nll=float(row["nll"]), aic=float(row["aic"]), bic=float(row["bic"]),
        n_trials=int(row["n_trials"]), n_no_response=int((~answered).sum()),
        n_options=int(model.n_options_),
        accuracy=float(np.mean(proba[answered].argmax(1) == c[answered])),
        mean_p_chosen=float(np.nanmean(values["p_chosen"])),
        converged=bool(row["converged"]), constant_choice=bool(row["constant_choice"]),
        at_bound=str(row["at_bound"]), choice_column=column)
    fig_table = values.rename(columns=dict(zip(keep, [f"p_reward_{k}" for k in range(len(keep))])))
    if option_labels and len(option_labels) != model.n_options_:
        raise ParameterError(f"Recording '{ctx.recording_id}': option_labels names "
                             f"{len(option_labels)} options ({option_labels}) but the session "
                             f"has {model.n_options_}; name one per option, in option order.")
    labels = option_labels or None
    ax = plot_choice_probability(fig_table, option=1, labels=labels)
    ax.figure.set_size_inches(11, 3.8)
    bound = set(metrics["at_bound"].split(",")) - {""}
    fitted = ", ".join(f"{k} = {metrics[k]:.3g}" + (" (at its bound)" if k in bound else "")
                       for k in model.parameters_)
    ax.set_title(f"{ctx.recording_id}: {fitted}; NLL {metrics['nll']:.1f} over "
                 f"{metrics['n_trials']} trials", fontsize="medium")
    return {"choice_model": metrics, "choice_values": values, "choice_probability": ax.figure}


def _window_mean(da: xr.DataArray, window, recording_id: str) -> xr.DataArray:
    t = da["time"].values
    keep = (t >= window[0]) & (t < window[1])
    if not keep.any():
        raise RecordingError(f"Recording '{recording_id}': no bin centre lies in "
                             f"response_window {list(window)}; bin centres span "
                             f"{t.min():g} .. {t.max():g} s.")
    return da.isel(time=np.flatnonzero(keep)).mean("time")


@register_step(
    "rpe_response",
    inputs={"recording": Input("recording", "the loaded session (spikes or signals, trials)"),
            "values": Input("choice_values", "per-trial RPEs (fit_choice_model's table)")},
    outputs={
        "rpe_response": Output("metrics", "the signal averaged over units/channels and over "
                                          "response_window regressed on the RPE: r2 "
                                          "(cross-validated), p_value, slope, r; peak R2 over "
                                          "time; units with p <= alpha"),
        "rpe_response_units": Output("table", "the same regression for each unit or channel"),
        "rpe_r2_over_time": Output("array", "(time,) cross-validated R2 of each bin, p_value and "
                                            "slope as coordinates (time_resolved: true)"),
        "rpe_response_figure": Output("figure", "signal by RPE tercile; R2 over time"),
    },
    params={
        "align_to": Param(COLUMN, ["reward_outcome_time", "outcome_time", "reward_time"],
                          "trials column with the outcome time (a list: the first present)"),
        "source": Param(COLUMN, "spikes",
                        "'spikes' or a signal name (a list: the first the recording has)"),
        "window": Param([Pair()], [-0.5, 1.5], "[start, stop] around the outcome in seconds"),
        "bin_size": Param([Interval(numbers.Real, 0, None, "neither")], 0.1,
                          "bin width in seconds"),
        "baseline": Param([Pair(), None], None,
                          "[start, stop] around the outcome whose mean is subtracted from each "
                          "trial; null: none"),
        "response_window": Param([Pair()], [0.0, 1.0],
                                 "[start, stop) of the bin centres averaged for the headline "
                                 "regression"),
        "rpe": Param([str], "rpe", "column of the values table holding the RPE"),
        "time_resolved": Param(["boolean"], True, "also regress every time bin"),
        "cv": Param([Interval(numbers.Integral, 2, None)], 5,
                    "contiguous folds of trials for the cross-validated R2"),
        "n_permutations": Param([Interval(numbers.Integral, 1, None)], 200,
                                "trial permutations for the p-values"),
        "alpha": Param([Interval(numbers.Real, 0, 1, "neither")], 0.05,
                       "significance level for the unit count and the figure"),
        "random_state": Param([Interval(numbers.Integral, 0, None)], 0,
                              "seed of the permutations"),
    },
)
def rpe_response(ctx, *, recording, values, align_to, source, window, bin_size, baseline,
                 response_window, rpe, time_resolved, cv, n_permutations, alpha, random_state):
    """Regress a signal aligned to the outcome on the choice model's RPE (rpe_regression).

    Spike counts (in Hz) or a signal are cut around each trial's outcome with
    ``Recording.epochs``; trials with a missing outcome time or RPE (no response) are
    left out. The headline regression uses the signal averaged over units (channels)
    and over ``response_window``; with ``time_resolved`` each bin is regressed too. R2
    is cross-validated over contiguous blocks of trials, the p-value from trial
    permutations (``rpe_regression``).
    """
    from ...plotting import plot_decoding_over_time
    from ...plotting._common import new_figure
    from ...plotting.rl import plot_rpe_response
    from ...rl.rpe_regression import rpe_regression

    rid = ctx.recording_id
    if not isinstance(values, pd.DataFrame) or rpe not in values.columns:
        raise RecordingError(f"Recording '{rid}': the values table has no column {rpe!r} "
                             "(run fit_choice_model first, or name the RPE column with 'rpe').")
    trials = recording.trials
    if trials is None:
        raise RecordingError(f"Recording '{rid}' has no trials table to align to.")
    event = pick_column(trials.columns, align_to, "the outcome times", rid)
    available = (["spikes"] if recording.has_spikes else []) + list(recording.signals)
    src = pick_column(available, source, "the 'source' parameter (spikes or a signal name)",
                      rid, kind="signal")
    if len(values) != len(trials) or not values.index.equals(trials.index):
        raise RecordingError(f"Recording '{rid}': the values table has {len(values)} rows but "
                             f"the trials table {len(trials)}; they must be the same trials.")
    x = values[rpe].to_numpy(dtype=np.float64)
    times = pd.to_numeric(trials[event], errors="coerce").to_numpy(dtype=np.float64)
    use = np.isfinite(x) & np.isfinite(times)
    if use.sum() < 2 * cv:
        raise RecordingError(f"Recording '{rid}': only {int(use.sum())} trials have an RPE and "
                             f"an outcome time; at least {2 * cv} are needed for cv={cv}.")
    sel = np.asarray(trials.index[use])
    da = recording.epochs(event, tuple(window), bin_size, source=src, trials=sel)
    if src == "spikes":
        da = da / float(bin_size)
        da.attrs.update(units="Hz")
    if baseline is not None:
        base = recording.epochs(event, tuple(baseline), bin_size, source=src, trials=sel)
        da = da - base.mean("time") / (float(bin_size) if src == "spikes" else 1.0)
    da.attrs.update(align_to=event)
    da.name = "firing rate" if src == "spikes" else src
    dim = "unit" if "unit" in da.dims else "channel"
    x = x[use]
    seed = int(random_state)
    kw = {"cv": cv, "n_permutations": n_permutations, "random_state": seed,
          "device": ctx.device}
    pooled = da.mean(dim)
    head = rpe_regression(_window_mean(pooled, response_window, rid).values, x, **kw).iloc[0]
    units = rpe_regression(_window_mean(da, response_window, rid).transpose("trial", dim).values,
                           x, **kw)
    units.index = pd.Index(da[dim].values, name=dim)
    metrics = {"source": src, "align_to": event, "r2": float(head["r2"]),
               "p_value": float(head["p_value"]), "slope": float(head["slope"]),
               "intercept": float(head["intercept"]), "r": float(head["r"]),
               "n_trials": int(head["n_trials"]), "n_units": int(da.sizes[dim]),
               "n_significant_units": int((units["p_value"] <= alpha).sum())}
    over_time = None
    fig = new_figure((11.0, 3.8))
    axes = fig.subplots(1, 2 if time_resolved else 1, squeeze=False)[0]
    plot_rpe_response(pooled, x, ax=axes[0])
    if time_resolved:
        res = rpe_regression(pooled.transpose("trial", "time"), x, **kw)
        t = pooled["time"].values
        over_time = xr.DataArray(res["r2"].to_numpy(), dims="time",
                                 coords={"time": t, "p_value": ("time", res["p_value"].to_numpy()),
                                         "slope": ("time", res["slope"].to_numpy())},
                                 name="rpe_r2_over_time",
                                 attrs={"align_to": event, "source": src,
                                        "n_permutations": int(n_permutations)})
        r2 = over_time.values
        peak = int(np.nanargmax(r2)) if np.isfinite(r2).any() else None  # NaN: a constant bin
        metrics.update(peak_r2=float(r2[peak]) if peak is not None else float("nan"),
                       peak_time=float(t[peak]) if peak is not None else float("nan"),
                       n_significant_bins=int((res["p_value"] <= alpha).sum()))
        plot_decoding_over_time(over_time, chance=0.0, pvalues=res["p_value"].to_numpy(),
                                alpha=alpha, ax=axes[1], label="cross-validated R\u00b2",
                                ylabel="R\u00b2 of signal ~ RPE")
        axes[1].set_title("Regression on the RPE, bin by bin (uncorrected)")
    axes[0].set_title(f"{rid}: R\u00b2 = {metrics['r2']:.3f}, p = {metrics['p_value']:.3g} "
                      f"in {list(response_window)} s", fontsize="medium")
    return {"rpe_response": metrics, "rpe_response_units": units,
            "rpe_r2_over_time": over_time, "rpe_response_figure": fig}
