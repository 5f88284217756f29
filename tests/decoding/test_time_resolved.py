"""TimeResolvedDecoder against a loop of scikit-learn fits, and on planted-signal recordings."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

import neuroml
from neuroml.decoding import LinearDecoder, LogisticDecoder, TimeResolvedDecoder, permutation_test
from neuroml.errors import ParameterError

TIGHT = dict(tol=1e-10, max_iter=10_000)
RUTISHAUSER = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
               / "human_mtl_units_trials_rutishauser.nwb")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small solves single-threaded (BLAS threads waiting for a core on a loaded machine
    slow scikit-learn's small fits down 40x)."""
    with threadpool_limits(1):
        yield


def _sk_lr(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegression(**kw)


def _epochs(n=90, T=6, F=5, K=3, onset=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, K, n)
    X = rng.normal(size=(n, T, F))
    X[:, onset:, :K] += 1.2 * np.eye(K)[y][:, None, :]
    return X, y


def test_scores_equal_a_loop_of_sklearn_fits():
    """What MNE's SlidingEstimator does: one LogisticRegression per bin and fold."""
    X, y = _epochs()
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    trd = TimeResolvedDecoder(LogisticDecoder(device="cpu", **TIGHT), cv=cv, device="cpu").fit(X, y)
    assert trd.scores_.dims == ("fold", "time") and trd.scores_.shape == (3, 6)
    splits = list(cv.split(X[:, 0], y))
    ref = np.array([[_sk_lr(**TIGHT).fit(X[tr, t], y[tr]).score(X[te, t], y[te])
                     for t in range(6)] for tr, te in splits])
    np.testing.assert_allclose(trd.scores_.values, ref, atol=1e-12)
    np.testing.assert_allclose(trd.mean_scores_.values, ref.mean(0), atol=1e-12)
    # default tolerance: the same up to a rare flipped held-out prediction
    trd = TimeResolvedDecoder(cv=cv, device="cpu").fit(X, y)
    ref = np.array([[_sk_lr().fit(X[tr, t], y[tr]).score(X[te, t], y[te])
                     for t in range(6)] for tr, te in splits])
    assert np.abs(trd.scores_.values - ref).max() <= 1 / 30 + 1e-9
    # predictions of the per-bin decoders fitted on all trials
    pred = trd.predict(X)
    assert pred.shape == (90, 6)
    for t in (0, 4):
        np.testing.assert_array_equal(pred[:, t], trd.estimators_[t].predict(X[:, t]))
        assert np.mean(pred[:, t] == _sk_lr().fit(X[:, t], y).predict(X[:, t])) > 0.97


def test_generalization_matrix_equals_loop():
    X, y = _epochs(T=5)
    cv = KFold(3, shuffle=True, random_state=1)
    trd = TimeResolvedDecoder(LogisticDecoder(device="cpu", **TIGHT), cv=cv, generalize=True,
                              scoring="neg_log_loss", device="cpu").fit(X, y)
    assert trd.scores_.dims == ("fold", "train_time", "test_time")
    from sklearn.metrics import log_loss

    for f, (tr, te) in enumerate(cv.split(X)):
        for t in range(5):
            model = _sk_lr(**TIGHT).fit(X[tr, t], y[tr])
            for u in range(5):
                ref = -log_loss(y[te], model.predict_proba(X[te, u]), labels=[0, 1, 2])
                assert trd.scores_.values[f, t, u] == pytest.approx(ref, abs=1e-6)
    diag = TimeResolvedDecoder(LogisticDecoder(device="cpu", **TIGHT), cv=cv,
                               scoring="neg_log_loss", device="cpu").fit(X, y)
    np.testing.assert_allclose(np.diagonal(trd.mean_scores_.values), diag.mean_scores_.values,
                               atol=1e-9)
    assert trd.predict(X).shape == (90, 5, 5)
    np.testing.assert_array_equal(trd.predict(X)[:, 2, 4], trd.estimators_[2].predict(X[:, 4]))


def test_sklearn_estimator_loop_path_matches_batched():
    X, y = _epochs(T=4)
    cv = StratifiedKFold(3)
    ours = TimeResolvedDecoder(LogisticDecoder(device="cpu", **TIGHT), cv=cv, device="cpu").fit(X, y)
    loop = TimeResolvedDecoder(_sk_lr(**TIGHT), cv=cv, device="cpu").fit(X, y)
    np.testing.assert_allclose(ours.scores_.values, loop.scores_.values, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), loop.predict(X))


@pytest.mark.parametrize("make", [lambda: LogisticDecoder(device="cpu", **TIGHT),
                                  lambda: _sk_lr(**TIGHT)], ids=["batched", "loop"])
def test_refit_false_gives_the_same_scores_without_models(make):
    """refit=False: the cross-validated scores only (MNE's cross_val_multiscore)."""
    X, y = _epochs(T=4)
    cv = StratifiedKFold(3)
    full = TimeResolvedDecoder(make(), cv=cv, device="cpu").fit(X, y)
    lean = TimeResolvedDecoder(make(), cv=cv, refit=False, device="cpu").fit(X, y)
    np.testing.assert_allclose(lean.scores_.values, full.scores_.values, atol=1e-12)
    np.testing.assert_array_equal(lean.classes_, [0, 1, 2])
    assert not hasattr(lean, "estimators_")
    for method in (lean.predict, lambda X: lean.score(X, y)):
        with pytest.raises(neuroml.NotFittedError, match="refit=False.*refit=True"):
            method(X)
    # refitting the same object with refit=True brings the models back; and back again
    lean.set_params(refit=True).fit(X, y)
    np.testing.assert_array_equal(lean.predict(X), full.predict(X))
    assert not hasattr(lean.set_params(refit=False).fit(X, y), "estimators_")


@pytest.mark.skipif(not RUTISHAUSER.exists(), reason="../shared/data/real not present")
def test_real_recording_fast_paths_equal_sklearn_loop(monkeypatch):
    """35 human MTL units, 180 recognition trials x 40 bins of spike counts: with the
    float32 phase and the thread blocks forced on, the scores equal a loop of
    scikit-learn fits (and the plain float64 solve)."""
    from neuroml.decoding import _solvers

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the file's OpticalSeries placeholder
        with neuroml.load_recording(RUTISHAUSER) as rec:
            epochs = rec.with_trials(rec.intervals["recognition_table"]).epochs(
                "start_time", (-0.5, 1.5), 0.05)
    assert epochs.shape == (180, 40, 35)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)

    def fit():
        return TimeResolvedDecoder(LogisticDecoder(device="cpu", tol=1e-8, max_iter=5000), cv=cv,
                                   device="cpu").fit(epochs, "stimuli_type")

    monkeypatch.setattr(_solvers, "MIXED_PRECISION_MIN_WORK", 0)
    monkeypatch.setattr(_solvers, "PARALLEL_MIN_WORK", 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fast = fit()
    finally:
        torch.set_num_threads(before)
    monkeypatch.setattr(_solvers, "MIXED_PRECISION_MIN_WORK", float("inf"))
    monkeypatch.setattr(_solvers, "PARALLEL_MIN_WORK", float("inf"))
    plain = fit()
    X, y = epochs.values.astype(np.float64), epochs.coords["stimuli_type"].values
    ref = np.array([[_sk_lr(tol=1e-8, max_iter=5000).fit(X[tr, t], y[tr]).score(X[te, t], y[te])
                     for t in range(40)] for tr, te in cv.split(X[:, 0], y)])
    # measured: equal everywhere; allowed: a borderline test trial (1 of 36) flipping
    for ours in (fast, plain):
        diff = np.abs(ours.scores_.values - ref)
        assert diff.max() <= 1 / 36 + 1e-9 and diff.mean() < 1e-3
    for a, b in zip(fast.estimators_, plain.estimators_, strict=True):
        np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-5)


def test_linear_decoder_for_continuous_targets():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4, 3))
    target = X[:, 2, 0] + 0.3 * rng.normal(size=60)
    trd = TimeResolvedDecoder(LinearDecoder(1.0, device="cpu"), cv=KFold(3), device="cpu").fit(X, target)
    for f, (tr, te) in enumerate(KFold(3).split(X)):
        for t in range(4):
            ref = r2_score(target[te], Ridge(1.0).fit(X[tr, t], target[tr]).predict(X[te, t]))
            assert trd.scores_.values[f, t] == pytest.approx(ref, abs=1e-9)
    assert int(np.argmax(trd.mean_scores_.values)) == 2


def test_make_decision_epochs_decode_after_onset_only():
    """Planted ground truth: stimulus decodable only after the signal onset."""
    rec = neuroml.make_decision(n_units=40, n_trials=160, signal_onset=0.3, snr=4.0,
                                choice_snr=0.0, random_state=1)
    onset = rec.meta["ground_truth"]["signal_onset"]
    ep = rec.epochs("stim_on", (-0.2, 1.0), 0.1)
    trd = TimeResolvedDecoder(cv=StratifiedKFold(4, shuffle=True, random_state=0),
                              device="cpu").fit(ep, "stimulus")
    assert trd.scores_.dims == ("fold", "time")
    np.testing.assert_allclose(trd.scores_["time"].values, ep["time"].values)
    after = ep["time"].values > onset
    res = permutation_test(TimeResolvedDecoder(device="cpu"), ep, "stimulus",
                           n_permutations=99, cv=StratifiedKFold(4, shuffle=True, random_state=0),
                           random_state=0)
    assert res.score.dims == ("time",) and res.null.dims == ("permutation", "time")
    np.testing.assert_allclose(res.score.values, trd.mean_scores_.values, atol=1e-12)
    # after the onset: well above chance, every bin significant at the smallest p
    assert (trd.mean_scores_.values[after] > 0.65).all()
    assert (res.pvalue.values[after] <= 0.02).all()
    # before: at chance (no information is planted there)
    assert np.abs(trd.mean_scores_.values[~after] - 0.5).max() < 0.12
    assert (res.pvalue.values[~after] > 0.01).all()
    # trial-level predictions keep the trial coordinates
    pred = trd.predict(ep)
    assert pred.dims == ("trial", "time") and "stimulus" in pred.coords
    assert float((pred.isel(time=-1) == ep["stimulus"]).mean()) > 0.7
    assert trd.score(ep, "stimulus").dims == ("time",)


def test_tensor_input():
    X, y = _epochs(n=60, T=3)
    trd = TimeResolvedDecoder(cv=3, device="cpu").fit(torch.as_tensor(X), y)
    out = trd.predict(torch.as_tensor(X))
    assert isinstance(out, torch.Tensor) and out.shape == (60, 3)
    np.testing.assert_array_equal(out.numpy(), trd.predict(X))


def test_errors_say_what_is_needed():
    X, y = _epochs(n=30, T=3)
    with pytest.raises(ParameterError, match=r"\(trial, time, unit\)"):
        TimeResolvedDecoder(device="cpu").fit(X[:, 0], y)
    da = xr.DataArray(X, dims=("trial", "time", "unit"), coords={"side": ("trial", y)})
    with pytest.raises(ParameterError, match=r"available: \['side'\]"):
        TimeResolvedDecoder(device="cpu").fit(da, "choice")
    trd = TimeResolvedDecoder(cv=3, device="cpu").fit(da, "side")
    with pytest.raises(ParameterError, match="time bins"):
        trd.predict(X[:, :2])
    with pytest.raises(ParameterError, match=r"\(trial, time, unit\)"):
        trd.predict(X[:, 0])


def test_nan_trials_are_named_and_dropna_fixes_them():
    """Epochs of a signal are NaN where the window leaves the recording: the error says
    how many trials and which, and dropping them (the hint) makes the fit work."""
    X, y = _epochs(n=40, T=3)
    X[[3, 17], -1, :] = np.nan  # the last bin of two trials ran past the recording
    da = xr.DataArray(X, dims=("trial", "time", "unit"), coords={"side": ("trial", y)})
    with pytest.raises(ParameterError, match=r"NaN in 2 of 40 trials \(the first: trial index 3\)"
                       r".*dropna\('trial'\)"):
        TimeResolvedDecoder(cv=3, device="cpu").fit(da, "side")
    trd = TimeResolvedDecoder(cv=3, device="cpu").fit(da.dropna("trial"), "side")
    assert trd.scores_.sizes == {"fold": 3, "time": 3}
    with pytest.raises(ParameterError, match="NaN in 2 of 40 trials"):
        trd.predict(da)


def test_user_guide_examples_run(tmp_path, run_user_guide):
    """Every Python block of docs/user-guide/decoding.md runs, in order (figures to tmp_path)."""
    ns, n_blocks = run_user_guide("decoding.md")
    assert n_blocks >= 4
    assert (tmp_path / "decoding_over_time.png").stat().st_size > 10_000
    assert (tmp_path / "temporal_generalization.png").stat().st_size > 10_000
    # what the page says it shows
    assert ns["res"].pvalue == pytest.approx(1 / 201)
    assert ns["search"].scores_.shape == (5, 10)
    before = ns["tr"].mean_scores_.sel(time=slice(None, 0.25)).values
    after = ns["tr"].mean_scores_.sel(time=slice(0.35, None)).values
    assert np.abs(before - 0.5).max() < 0.1 and after.min() > 0.6
    assert (ns["null"].pvalue.sel(time=slice(0.35, None)) <= 0.02).all()
    gen = ns["gen"].mean_scores_
    assert float(gen.sel(train_time=slice(0.35, None), test_time=slice(0.35, None)).mean()) > 0.65


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    X, y = _epochs()
    cv = StratifiedKFold(3)
    cpu = TimeResolvedDecoder(LogisticDecoder(**TIGHT), cv=cv, device="cpu").fit(X, y)
    gpu = TimeResolvedDecoder(LogisticDecoder(**TIGHT), cv=cv, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.scores_.values, cpu.scores_.values, atol=1e-12)
    res = permutation_test(TimeResolvedDecoder(cv=cv, device="cuda"), X, y, n_permutations=20,
                           random_state=0)
    ref = permutation_test(TimeResolvedDecoder(cv=cv, device="cpu"), X, y, n_permutations=20,
                           random_state=0)
    np.testing.assert_allclose(res.null.values, ref.null.values, atol=1e-9)
