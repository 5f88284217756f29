"""Bad or degenerate input to neuroml.rl: clear errors, NaN with a warning, never a wrong number.

Covers rpe_regression (constant targets, empty or non-numeric input, cv, trial dimension),
learning rates and divergence (TDModel, RescorlaWagner, DistributionalTD and the pure
learners), TDModel's gamma = 1 warning, too few trials, and labels and dtypes in the
dopamine analyses and the distribution helpers.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from scipy import stats
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold, cross_val_score

from neuroml.errors import ParameterError
from neuroml.rl.distributional import DistributionalTD, expectiles, quantiles
from neuroml.rl.imputation import decode_reward_distribution
from neuroml.rl.learners import distributional_td, rescorla_wagner, td_learning
from neuroml.rl.reversal import reversal_correlation, reversal_point_analysis
from neuroml.rl.rpe_regression import rpe_regression
from neuroml.rl.td import RescorlaWagner, TDModel

FAST = {"n_permutations": 19, "random_state": 0, "device": "cpu"}


@contextlib.contextmanager
def _no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------------- rpe_regression
def _session(n=100, seed=0):
    rng = np.random.default_rng(seed)
    rpe = rng.normal(size=n)
    return rpe, 2.0 + 0.8 * rpe + rng.normal(size=n)


def test_constant_target_is_nan_with_one_warning_and_leaves_the_others_alone():
    # scikit-learn's r2_score calls a constant target perfectly predicted (1.0) or not at
    # all (0.0); neither means anything, so such a target must come out NaN.
    rpe, y = _session()
    signal = np.c_[y, np.zeros_like(y), np.full_like(y, 0.1)]
    with pytest.warns(RuntimeWarning, match=r"2 of 3 targets .* constant .*\[1, 2\]") as rec:
        res = rpe_regression(signal, rpe, **FAST)
    assert len([w for w in rec if issubclass(w.category, RuntimeWarning)]) == 1
    assert res.loc[[1, 2], ["r2", "p_value", "slope", "intercept", "r"]].isna().all().all()
    assert (res["n_trials"] == 100).all()
    fit = stats.linregress(rpe, y)
    assert res.loc[0, "slope"] == pytest.approx(fit.slope) and res.loc[0, "r"] == pytest.approx(
        fit.rvalue)
    cv = cross_val_score(LinearRegression(), rpe[:, None], y, cv=KFold(5)).mean()
    assert res.loc[0, "r2"] == pytest.approx(cv, abs=1e-8)


def test_constant_unit_of_an_epoch_is_nan():
    rpe, y = _session(80, seed=1)
    counts = np.stack([np.c_[y, y + 1.0], np.c_[y, np.zeros_like(y)]], axis=-1)  # (80, 2, 2)
    da = xr.DataArray(counts, dims=("trial", "time", "unit"),
                      coords={"time": [0.1, 0.2], "unit": ["a", "b"]})
    with pytest.warns(RuntimeWarning, match=r"1 of 4 targets"):
        res = rpe_regression(da, rpe, **FAST)
    assert np.isnan(res.loc[(0.2, "b"), "r2"]) and np.isnan(res.loc[(0.2, "b"), "p_value"])
    assert res.drop(index=(0.2, "b"))["slope"].to_numpy() == pytest.approx(
        [stats.linregress(rpe, y).slope] * 3)


def test_trial_dimension_is_found_by_name():
    rpe, y = _session(60, seed=2)
    da = xr.DataArray(np.c_[y, -y], dims=("trial", "time"),
                      coords={"trial": np.arange(100, 160), "time": [-0.5, 0.5], "x": ("trial", rpe)})
    ref = rpe_regression(da, rpe, **FAST)
    pd.testing.assert_frame_equal(rpe_regression(da.T, rpe, **FAST), ref)
    pd.testing.assert_frame_equal(rpe_regression(da.T, "x", **FAST), ref)
    assert ref["slope"].to_numpy() == pytest.approx([stats.linregress(rpe, y).slope,
                                                     -stats.linregress(rpe, y).slope])


def test_an_iterable_cv_serves_every_target():
    rpe, y = _session(60, seed=3)
    signal = np.c_[y, 2 * y]
    folds = list(KFold(4).split(rpe[:, None]))
    ref = rpe_regression(signal, rpe, cv=KFold(4), **FAST)
    res = rpe_regression(signal, rpe, cv=(pair for pair in folds), **FAST)  # a generator
    assert res["r2"].notna().all()
    np.testing.assert_allclose(res["r2"], ref["r2"], atol=1e-10)
    np.testing.assert_allclose(res["p_value"], ref["p_value"])
    masks = [tuple(np.isin(np.arange(60), a) for a in pair) for pair in folds]  # boolean masks
    np.testing.assert_allclose(rpe_regression(signal, rpe, cv=masks, **FAST)["r2"], ref["r2"],
                               atol=1e-10)


@pytest.mark.parametrize("signal, rpe, kwargs, match", [
    (np.array([]), np.array([]), {}, r"'signal' parameter .* empty"),
    (np.zeros((0, 3)), np.zeros(0), {}, r"'signal' parameter .* empty"),
    (np.array(["a"] * 20), np.arange(20.0), {}, r"'signal' parameter .* numeric"),
    (pd.DataFrame({"a": ["x"] * 20}), np.arange(20.0), {}, r"'signal' parameter .* numeric"),
    (np.arange(20.0), np.array(["a"] * 20), {}, r"'rpe' parameter .* numeric"),
    (np.arange(20.0), np.arange(20.0) % 3, {"cv": "loo"}, r"'cv' parameter .* Got 'loo'"),
    (np.arange(20.0), np.arange(20.0) % 3, {"cv": [(np.arange(10), np.arange(10, 30))]},
     r"'cv' parameter .* within 0\.\.19 .* element 0"),
    (np.arange(20.0), np.arange(20.0) % 3, {"cv": [[1, 2, 3]]}, r"'cv' parameter .* pairs"),
    (np.arange(20.0), np.arange(20.0) % 3, {"cv": []}, r"'cv' parameter .* empty iterable"),
])
def test_rpe_regression_bad_input(signal, rpe, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        rpe_regression(signal, rpe, **{**FAST, **kwargs})


# ---------------------------------------------------------------------- learning rates
def _pavlovian(n_trials=40, n_time=12, cue=2, reward=8, n_stimuli=1):
    stimuli = np.zeros((n_trials, n_time, n_stimuli))
    stimuli[:, cue] = 1
    rewards = np.zeros((n_trials, n_time))
    rewards[:, reward] = 1
    return stimuli, rewards


def _data(model):
    return {TDModel: _pavlovian()[:1] + (_pavlovian()[1],),
            RescorlaWagner: (np.ones((5, 1)), np.ones(5)),
            DistributionalTD: (np.ones(5),)}[type(model)]


@pytest.mark.parametrize("model, match", [
    (TDModel(alpha=np.inf), r"in the range \[0, 1\]"), (TDModel(alpha=2.0), r"\[0, 1\]"),
    (TDModel(alpha=-0.1), r"\[0, 1\]"), (TDModel(alpha=np.nan), r"\[0, 1\]"),
    (RescorlaWagner(np.inf), r"\[0, 1\]"), (RescorlaWagner(1.5), r"\[0, 1\]"),
    (DistributionalTD(alpha=1e3), r"in \(0, 1\] for expectile cells"),
    (DistributionalTD(alpha=2.0), r"in \(0, 1\] for expectile cells"),
    (DistributionalTD(alpha=0.0), r"in the range \(0, inf\)"),
])
def test_learning_rates_outside_their_range_are_refused(model, match):
    with pytest.raises(ParameterError, match=rf"'alpha' parameter of {type(model).__name__} "
                                             rf"must .*{match}"):
        model.set_params(device="cpu").fit(*_data(model))


def test_a_zero_rate_learns_nothing_and_quantile_steps_may_exceed_one():
    s, r = _pavlovian()
    still = TDModel(alpha=0.0, device="cpu").fit(s, r)
    np.testing.assert_array_equal(still.rpe_.values, r)  # V stays 0: the RPE is the reward
    assert RescorlaWagner(0.0, device="cpu").fit(np.ones((5, 1)), np.ones(5)).values_.max() == 0
    # quantile cells step by alpha (reward units): rewards of hundreds want steps above 1
    rng = np.random.default_rng(0)
    rewards = rng.uniform(0, 400, 20_000)
    cells = DistributionalTD(taus=[0.25, 0.5, 0.75], kind="quantile", alpha=2.0,
                             device="cpu").fit(rewards)
    np.testing.assert_allclose(cells.values_.values, [100, 200, 300], atol=15)


@pytest.mark.parametrize("model, match", [
    (TDModel(gamma=1.01), "'gamma' parameter"), (TDModel(gamma=-0.1), "'gamma' parameter"),
    (TDModel(lam=1.2), "'lam' parameter"),
])
def test_gamma_and_lambda_lie_in_zero_one(model, match):
    with pytest.raises(ParameterError, match=match + r" of TDModel must be a float in the "
                                                     r"range \[0, 1\]"):
        model.set_params(device="cpu").fit(*_pavlovian())


def test_td_divergence_raises_and_names_alpha_and_the_feature_scale():
    # 10 stimuli with one onset: a CSC update moves V(t-1) by alpha x 10 x delta, which
    # overshoots by a factor 9 per trial at alpha = 1 (stable below alpha = 0.2).
    s, r = _pavlovian(n_trials=400, n_stimuli=10)
    with pytest.raises(ParameterError, match=r"learning diverged.*alpha=1\.0.*up to 10 "
                                             r"summed squared feature values"):
        TDModel(alpha=1.0, gamma=0.9, device="cpu").fit(s, r)
    model = TDModel(alpha=0.05, gamma=0.9, device="cpu").fit(s, r)
    # converged: V at the bin before the reward is 1 (CSC, gamma^0), the cue's RPE 0.9^5
    assert model.value_.values[-1, 7] == pytest.approx(1.0, abs=1e-6)
    assert model.rpe_.values[-1, 2] == pytest.approx(0.9**6, abs=1e-6)


def test_rescorla_wagner_divergence_raises():
    # three cues on every trial: V moves by alpha x 3 x delta; with alpha = 1 the error
    # is multiplied by -2 per trial (infinite by trial ~1025); with alpha = 0.6 by -0.8.
    cues, rewards = np.ones((1200, 3)), np.ones(1200)
    with pytest.raises(ParameterError, match=r"learning diverged.*alpha=1\.0.*factor 3"):
        RescorlaWagner(1.0, device="cpu").fit(cues, rewards)
    values = RescorlaWagner(0.6, device="cpu").fit(cues, rewards).values_.values
    np.testing.assert_allclose(values[:30], 1 - (1 - 1.8) ** np.arange(30), rtol=1e-10)


def test_distributional_td_overflow_raises():
    with pytest.raises(ParameterError, match=r"learning diverged.*alpha=1\.0.*Rescale"):
        DistributionalTD(taus=3, alpha=1.0, device="cpu").fit([1.7e308, -1.7e308, 1.7e308])


@pytest.mark.parametrize("call, match", [
    (lambda: td_learning(np.ones((2, 3, 1)), np.ones((2, 3)), 1.5, 0.9, 0.0),
     r"'alpha' argument of td_learning must lie in \[0, 1\].*\[1\.5\]"),
    (lambda: td_learning(np.ones((2, 3, 1)), np.ones((2, 3)), 0.1,
                         torch.tensor([0.9, 1.2], dtype=torch.float64), 0.0), r"'gamma'.*\[1\.2"),
    (lambda: td_learning(np.ones((2, 3, 1)), np.ones((2, 3)), 0.1, 0.9, -0.5), "'lam'"),
    (lambda: rescorla_wagner(np.ones((3, 1)), np.ones(3), np.nan), "'alpha'.*rescorla_wagner"),
    (lambda: distributional_td(np.ones(3), [0.5], -0.1), "'alpha'.*distributional_td"),
])
def test_pure_learners_check_their_rates(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


# ---------------------------------------------------------------------- gamma = 1
def test_presence_with_gamma_one_warns_once_and_grows_without_bound():
    # The presence feature stays on to the last bin: nothing anchors its weight, which
    # gains alpha x reward on every trial, so the RPE at the cue is alpha (n - 1) on trial n.
    s, r = _pavlovian(n_trials=60, n_time=20)
    with pytest.warns(RuntimeWarning, match=r"gamma=1.*'presence' features of stimulus 0 .*"
                                             r"grow from 3 after 30 trials to 6 after 60.*"
                                             r"'duration'") as rec:
        model = TDModel("presence", alpha=0.1, gamma=1.0, device="cpu").fit(s, r)
    assert len(rec) == 1
    np.testing.assert_allclose(model.rpe_.values[:, 2], 0.1 * np.arange(60), atol=1e-9)
    # a duration that ends inside the trial anchors it: the cue's RPE settles at
    # 1 - alpha (w_end = (w + alpha)(1 - alpha) has the fixed point 1 - alpha)
    s, r = _pavlovian(n_trials=200, n_time=20)
    with _no_warnings():
        bounded = TDModel("presence", alpha=0.1, gamma=1.0, duration=12,
                          device="cpu").fit(s, r)
    assert bounded.rpe_.values[-1, 2] == pytest.approx(0.9, abs=1e-6)


def test_a_stimulus_on_in_every_bin_warns_with_csc_features_too():
    # onsets in every bin: CSC has one feature (lag 0) that never changes, like presence
    s = np.ones((30, 6))
    r = np.zeros((30, 6))
    r[:, 3] = 1
    with pytest.warns(RuntimeWarning, match="'csc' features of stimulus 0 are still on"):
        model = TDModel("csc", alpha=0.1, gamma=1.0, device="cpu").fit(s, r)
    assert model.rpe_.values[-1, 0] == pytest.approx(0.1 * 29, abs=1e-9)


def _guide_trials(n_trials):
    """The user guide's Pavlovian task: cue at bin 5, reward at 25 of 50, and the reward's
    own stimulus (for microstimuli)."""
    s, r = _pavlovian(n_trials=n_trials, n_time=50, cue=5, reward=25)
    stimuli = np.concatenate([s, np.zeros_like(s)], axis=-1)
    stimuli[:, 25, 1] = 1
    return s, stimuli, r


@pytest.mark.parametrize("features, two, kwargs", [
    ("csc", False, {"alpha": 0.3, "gamma": 1.0}),  # the user guide's CSC example
    ("csc", True, {"alpha": 0.3, "gamma": 1.0, "lam": 0.9}),  # CSC: the last lag never learns
    ("microstimulus", True, {"alpha": 0.5, "gamma": 0.98, "lam": 0.95}),  # the guide's
    ("microstimulus", False, {"alpha": 0.5, "gamma": 1.0, "lam": 0.95}),  # cue alone
    ("presence", False, {"alpha": 0.1, "gamma": 0.98}),  # gamma < 1: an equilibrium exists
])
def test_bounded_models_do_not_warn(features, two, kwargs):
    cue, both, r = _guide_trials(400)
    with _no_warnings():
        model = TDModel(features, **kwargs, device="cpu").fit(both if two else cue, r)
    assert np.abs(model.rpe_.values[-100:]).max() < 2.0  # bounded after 400 trials


def test_microstimuli_of_a_late_stimulus_with_gamma_one_warn_and_grow():
    # The reward's own microstimuli are still high at the last bin: with gamma = 1 the
    # expected update has an eigenvalue with a negative real part, and the values grow.
    _, both, r = _guide_trials(450)
    with pytest.warns(RuntimeWarning, match=r"stimulus 0, stimulus 1 are still on .* "
                                             r"expected values grow"):
        model = TDModel("microstimulus", alpha=0.5, gamma=1.0, lam=0.95,
                        device="cpu").fit(both, r)
    cue = model.rpe_.values[:, 5]  # measured: 1.9 on trial 150, 4.4 on 300, 8.6 on 450
    assert cue[149] > 1.5 and cue[299] > 2 * cue[149] and cue[-1] > 1.8 * cue[299]


def test_a_drift_passed_from_one_stimulus_to_another_warns():
    # Two presence stimuli on to the end, the second starting with the reward: the first's
    # weight gains alpha x reward on every trial through the second's (A = [[0, -1], [0, 0]]:
    # no direction of A's null space meets b, yet the weights drift linearly).
    n, T = 200, 50
    s = np.zeros((n, T, 2))
    s[:, 5, 0] = s[:, 20, 1] = 1
    r = np.zeros((n, T))
    r[:, 20] = 1
    with pytest.warns(RuntimeWarning, match=r"stimulus 0, stimulus 1 are still on .* grow from "
                                             r"10 after 100 trials to 20 after 200"):
        model = TDModel("presence", alpha=0.1, gamma=1.0, device="cpu").fit(s, r)
    assert model.rpe_.values[-1, 5] == pytest.approx(0.1 * (n - 1), rel=1e-6)


def test_stimuli_that_no_reward_follows_do_not_warn():
    # presence to the end of the trial with gamma = 1, but the reward comes before the cue:
    # nothing drives the weight (b = 0), which stays 0
    n, T = 100, 30
    s = np.zeros((n, T))
    s[:, 20] = 1
    r = np.zeros((n, T))
    r[:, 10] = 1
    with _no_warnings():
        model = TDModel("presence", alpha=0.2, gamma=1.0, device="cpu").fit(s, r)
    assert np.abs(model.weights_).max() == 0.0


# ---------------------------------------------------------------------- too few trials
@pytest.mark.parametrize("shape", [(0, 10), (5, 0)])
def test_td_needs_trials_and_bins(shape):
    with pytest.raises(ParameterError, match="at least one trial and one time bin"):
        TDModel(device="cpu").fit(np.zeros(shape), np.zeros(shape))


def _two_cells(n=20, seed=0):
    rng = np.random.default_rng(seed)
    mags = np.repeat([1.0, 2.0, 4.0, 8.0], n)
    y = np.r_[mags - 3.0, mags - 5.0] + 0.3 * rng.normal(size=2 * mags.size)
    return y, np.r_[mags, mags], np.repeat(["a", "b"], mags.size)


def test_no_estimable_cell_raises():
    with pytest.raises(ParameterError, match="no cell's reversal point can be estimated.*"
                                             "split_halves=False"):
        reversal_point_analysis([1.0, -1, 2, -2, 3, -3], [1, 2, 3, 1, 2, 3], list("aaabbb"))


@pytest.mark.parametrize("extra_mag, extra_resp", [
    ([4.0, 4.0], [1.0, 2.0]),  # two trials at one magnitude
    ([4.0, 4.0, 8.0, 8.0], [1.0, 2.0, 3.0, 4.0]),  # positive at 4 and 8, nothing below
])
def test_cells_without_enough_trials_are_nan_with_one_warning(extra_mag, extra_resp):
    y, m, c = _two_cells()
    y, m = np.r_[y, extra_resp], np.r_[m, extra_mag]
    c = np.r_[c, ["thin"] * len(extra_mag)]
    with pytest.warns(RuntimeWarning, match=r"1 of 3 cells .*reversal point of 1 cell\(s\) "
                                             r"\['thin'\]") as rec:
        res = reversal_point_analysis(y, m, c, split_halves=False)
    assert len(rec) == 1
    assert res.loc["thin", ["reversal_point", "reversal_utility", "tau"]].isna().all()
    # planted: a reverses at 3 (between 2 and 4), b at 5 (between 4 and 8)
    assert 2 < res.loc["a", "reversal_point"] < 4 and 4 < res.loc["b", "reversal_point"] < 8
    assert res.loc[["a", "b"], "tau"].between(0, 1).all()


def test_reversal_correlation_needs_three_usable_cells():
    y, m, c = _two_cells()
    res = reversal_point_analysis(y, m, c, split_halves=False)
    with pytest.raises(ParameterError, match="at least 3 cells .* 2 usable"):
        reversal_correlation(res)
    with pytest.raises(ParameterError, match="DataFrame of reversal_point_analysis; got ndarray"):
        reversal_correlation(np.zeros(3))
    with pytest.raises(ParameterError, match=r"lacks the column\(s\) \['tau'\]"):
        reversal_correlation(res.drop(columns="tau"))
    with pytest.raises(ParameterError, match=r"lacks the column\(s\) \['reversal_utility'\]"):
        reversal_correlation(res.drop(columns="reversal_utility"))


def test_splits_without_a_correlation_are_nan_with_a_warning():
    rng = np.random.default_rng(0)
    good = pd.DataFrame({"reversal_utility": rng.normal(size=6), "tau": rng.uniform(0, 1, 6)})
    bad = good.assign(tau=[0.5, np.nan, 2.0, -1.0, np.nan, np.nan])  # 1 usable cell
    res = pd.concat([good, bad], keys=[0, 1], names=["split", "cell"])
    with pytest.warns(RuntimeWarning, match=r"1 of 2 splits \(\[1\]\)"):
        corr = reversal_correlation(res)
    r, p = stats.pearsonr(good["reversal_utility"], good["tau"])
    assert corr.loc[0, "r"] == pytest.approx(r) and corr.loc[0, "p_value"] == pytest.approx(p)
    assert np.isnan(corr.loc[1, "r"]) and corr.loc[1, "n_cells"] == 1
    with pytest.raises(ParameterError, match="none of the 2 splits"):
        reversal_correlation(pd.concat([bad, bad], keys=[0, 1], names=["split", "cell"]))


# ---------------------------------------------------------------------- labels and dtypes
@pytest.mark.parametrize("missing", [np.nan, None])
def test_missing_cell_labels_raise(missing):
    y, m, c = _two_cells()
    c = c.astype(object)
    c[5] = missing
    with pytest.raises(ParameterError, match=r"'cell' parameter .* 1 missing label.*index 5"):
        reversal_point_analysis(y, m, c)


def test_mixed_label_types_are_distinct_cells():
    y, m, c = _two_cells()
    y, m = np.r_[y, y[:80] + 1.0], np.r_[m, m[:80]]
    strings = np.r_[c, ["c"] * 80]
    mixed = np.array([{"a": 1, "b": "1", "c": 2}[k] for k in strings], dtype=object)
    ref = reversal_point_analysis(y, m, strings, n_splits=2, random_state=3)
    res = reversal_point_analysis(y, m, mixed, n_splits=2, random_state=3)
    assert res.xs(0, level="split").index.tolist() == [1, 2, "1"]  # ints first, then str
    rename = {1: "a", "1": "b", 2: "c"}
    back = res.rename(index=rename, level="cell").sort_index()
    pd.testing.assert_frame_equal(back, ref.sort_index(), check_index_type=False)


def test_series_on_different_indexes_raise_and_on_one_index_match_arrays():
    y, m, c = _two_cells()
    frame = pd.DataFrame({"y": y, "m": m, "c": c}, index=np.arange(1000, 1000 + y.size))
    ref = reversal_point_analysis(y, m, c, random_state=0)
    pd.testing.assert_frame_equal(
        reversal_point_analysis(frame["y"], frame["m"], frame["c"], random_state=0), ref)
    shuffled = frame["y"].sample(frac=1.0, random_state=0)
    with pytest.raises(ParameterError, match="'responses' and 'magnitude' arguments are pandas "
                                             r"Series with different indexes \(position 0"):
        reversal_point_analysis(shuffled, frame["m"], frame["c"])
    with pytest.raises(ParameterError, match="'responses' and 'cell'"):
        reversal_point_analysis(frame["y"], m, frame["c"].reset_index(drop=True))


@pytest.mark.parametrize("args, match", [
    ((np.array(["x"] * 6), [1, 2, 3, 1, 2, 3], list("aaabbb")), "'responses' parameter .* numbers"),
    (([1.0] * 6, ["a", "b"] * 3, list("aaabbb")), "'magnitude' parameter .* numbers"),
    ((np.ones((6, 2)), [1, 2, 3, 1, 2, 3], list("aaabbb")), r"'responses' .* 1-D"),
    (([], [], []), "no trials"),
])
def test_reversal_point_analysis_bad_arrays(args, match):
    with pytest.raises(ParameterError, match=match):
        reversal_point_analysis(*args)


@pytest.mark.parametrize("call, match", [
    (lambda: DistributionalTD(taus="abc", device="cpu").fit([1.0, 2.0]), "'taus' parameter"),
    (lambda: decode_reward_distribution(["a"], [0.5]), "'reversal_points' parameter .* numeric"),
    (lambda: decode_reward_distribution([1.0, 2.0], ["a", "b"]), "'taus' parameter .* numeric"),
    (lambda: decode_reward_distribution([[0.25, 0.5], [0.6, 0.75]], [[0.25, 0.5], [0.6, 0.75]]),
     r"'reversal_points' parameter .* 1-D .* \(2, 2\)"),
    (lambda: decode_reward_distribution(pd.Series([0.25, 0.5, 0.75], index=[3, 2, 1]),
                                        pd.Series([0.25, 0.5, 0.75], index=[1, 2, 3])),
     "different indexes"),
    (lambda: expectiles([[0.0, 1.0], [2.0, 3.0]], None, 0.5), r"'values' must be 1-D"),
    (lambda: expectiles([0.0, 1.0], [[0.5, 0.5]], 0.5), r"'probabilities' must be 1-D"),
    (lambda: expectiles(["a", "b"], None, 0.5), r"'values' must be numeric"),
    (lambda: quantiles([0.0, 1.0], None, "x"), r"'taus' must be numeric"),
])
def test_non_numeric_or_two_dimensional_input_raises(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


def test_decoding_series_on_one_index_works():
    e = pd.Series([0.25, 0.5, 0.75], index=["x", "y", "z"])
    z = decode_reward_distribution(e, pd.Series([0.25, 0.5, 0.75], index=e.index),
                                   n_samples=10, random_state=0)
    # samples whose expectiles are the targets: the 0.5-expectile is the mean
    assert z.mean() == pytest.approx(0.5, abs=1e-3)
    np.testing.assert_allclose(expectiles(z, None, [0.25, 0.5, 0.75]), e, atol=5e-3)
