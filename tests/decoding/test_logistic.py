"""LogisticDecoder / LogisticDecoderCV and the batched solver against scikit-learn."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.model_selection import KFold, StratifiedKFold
from threadpoolctl import threadpool_limits

import neuroml
from neuroml.decoding import LogisticDecoder, LogisticDecoderCV
from neuroml.decoding._solvers import one_hot, solve_logistic
from neuroml.errors import NotFittedError, ParameterError

TIGHT = dict(tol=1e-10, max_iter=10_000)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """scikit-learn's small solves run single-threaded: on a loaded machine, BLAS threads
    waiting for a core made them 40x slower (7 s instead of 0.17 s per LogisticRegressionCV)."""
    with threadpool_limits(1):
        yield


def _data(n=300, F=10, K=3, seed=0, shift=1.0, weights=None):
    rng = np.random.default_rng(seed)
    y = rng.choice(K, size=n, p=weights)
    X = rng.normal(size=(n, F)) + shift * np.eye(K, F)[y] + rng.normal(size=F)
    return X, y


def _sk(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegression(**kw)


CASES = {
    "binary": (dict(K=2), {}),
    "8-class": (dict(K=8, F=16, n=600), {}),
    "unbalanced": (dict(K=3, weights=[0.7, 0.2, 0.1]), {}),
    "balanced": (dict(K=3, weights=[0.7, 0.2, 0.1]), dict(class_weight="balanced")),
    "binary balanced": (dict(K=2, weights=[0.85, 0.15]), dict(class_weight="balanced")),
    "dict weights": (dict(K=3), dict(class_weight={0: 2.0, 2: 0.5})),
    "no intercept": (dict(K=4), dict(fit_intercept=False)),
    "binary no intercept": (dict(K=2), dict(fit_intercept=False)),
    "small C": (dict(K=3), dict(C=0.01)),
    "large C": (dict(K=3, shift=0.3), dict(C=100.0)),
}


@pytest.mark.parametrize("case", CASES)
def test_l2_matches_sklearn(case):
    data_kw, kw = CASES[case]
    X, y = _data(**data_kw)
    ours = LogisticDecoder(device="cpu", **kw, **TIGHT).fit(X, y)
    ref = _sk(**kw, **TIGHT).fit(X, y)
    assert ours.coef_.shape == ref.coef_.shape and ours.intercept_.shape == ref.intercept_.shape
    exact = ref.predict_proba(X)
    # both converged: the same optimum. Both also stop on a relative objective change
    # of 64 eps, which leaves ~1e-5 relative differences (8-class: our final gradient
    # is 8.5e-9, scikit-learn's 5.5e-8)
    np.testing.assert_allclose(ours.predict_proba(X), exact, rtol=5e-5, atol=1e-8)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=5e-5)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=5e-5)
    # default tolerance (1e-4 on the gradient) on both sides: each stops at its own point
    # near the optimum; measured, ours is within 0.5% of it (relative), scikit-learn's
    # lbfgs within 1.1%
    ours = LogisticDecoder(device="cpu", **kw).fit(X, y)
    ref = _sk(**kw).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), exact, rtol=1e-2, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=2e-2, atol=1e-6)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)


def test_string_labels_and_decision_shapes():
    X, y = _data(K=3)
    labels = np.array(["left", "right", "up"])[y]
    ours = LogisticDecoder(device="cpu").fit(X, labels)
    ref = _sk().fit(X, labels)
    np.testing.assert_array_equal(ours.classes_, ["left", "right", "up"])
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.decision_function(X).shape == (300, 3)
    np.testing.assert_allclose(ours.predict_log_proba(X), np.log(ours.predict_proba(X)), atol=1e-10)
    Xb, yb = _data(K=2)
    dec = LogisticDecoder(device="cpu").fit(Xb, yb)
    assert dec.decision_function(Xb).shape == (300,)
    np.testing.assert_allclose(dec.predict_proba(Xb)[:, 1],
                               1 / (1 + np.exp(-dec.decision_function(Xb))), rtol=1e-12)
    assert dec.score(Xb, yb) == pytest.approx(np.mean(dec.predict(Xb) == yb))


def test_no_penalty_matches_sklearn_C_inf():
    X, y = _data(n=500, K=3, shift=0.5)
    ours = LogisticDecoder(penalty=None, device="cpu", **TIGHT).fit(X, y)
    ref = _sk(C=np.inf, **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("K", [2, 3])
def test_l1_matches_saga(K):
    rng = np.random.default_rng(3)
    n, F = 400, 20
    X = rng.normal(size=(n, F))
    W = np.zeros((K, F))
    W[:, :3] = rng.normal(scale=2.0, size=(K, 3))
    y = (X @ W.T + rng.gumbel(size=(n, K))).argmax(1)
    ours = LogisticDecoder(C=0.05, penalty="l1", device="cpu", tol=1e-7, max_iter=20_000).fit(X, y)
    ref = _sk(C=0.05, l1_ratio=1.0, solver="saga", tol=1e-8, max_iter=20_000).fit(X, y)
    np.testing.assert_array_equal(ours.coef_ != 0, np.abs(ref.coef_) > 1e-6)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=2e-3)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-3)
    assert (ours.coef_[:, 3:] == 0).all()  # the noise features are dropped


def test_float32_stays_float32_and_agrees():
    X, y = _data(K=3)
    ours = LogisticDecoder(device="cpu").fit(X.astype(np.float32), y)
    assert ours.coef_.dtype == np.float32
    P = ours.predict_proba(X.astype(np.float32))
    assert P.dtype == np.float32
    ref = _sk().fit(X, y)
    np.testing.assert_allclose(P, ref.predict_proba(X), atol=2e-3)


def test_dataarray_and_tensor_round_trip():
    X, y = _data(n=120, K=3)
    da = xr.DataArray(X, dims=("trial", "unit"),
                      coords={"trial": np.arange(100, 220), "condition": ("trial", y)})
    dec = LogisticDecoder(device="cpu").fit(da, y)
    P = dec.predict_proba(da)
    assert isinstance(P, xr.DataArray) and P.dims == ("trial", "class")
    np.testing.assert_array_equal(P["class"].values, dec.classes_)
    np.testing.assert_array_equal(P["trial"].values, np.arange(100, 220))
    pred = dec.predict(da)
    assert pred.dims == ("trial",) and "condition" in pred.coords
    Pt = dec.predict_proba(torch.as_tensor(X))
    assert isinstance(Pt, torch.Tensor)
    np.testing.assert_allclose(Pt.numpy(), P.values)
    assert isinstance(dec.predict(torch.as_tensor(X)), torch.Tensor)


def test_save_load_round_trip(tmp_path):
    X, y = _data(K=3)
    labels = np.array(["a", "b", "c"])[y]
    for est in (LogisticDecoder(device="cpu"), LogisticDecoderCV(Cs=3, cv=3, device="cpu")):
        est.fit(X, labels)
        back = neuroml.load(est.save(tmp_path / f"{type(est).__name__}.pt"))
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
        np.testing.assert_allclose(back.predict_proba(X), est.predict_proba(X))


def test_errors():
    X, y = _data(K=2)
    with pytest.raises(ParameterError, match="'C' parameter of LogisticDecoder"):
        LogisticDecoder(C=0).fit(X, y)
    with pytest.raises(ParameterError, match="'penalty' parameter"):
        LogisticDecoder(penalty="elasticnet").fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticDecoder(device="cpu").fit(X, np.zeros(len(y)))
    with pytest.raises(ParameterError, match="class_weight dict must have the class labels"):
        LogisticDecoder(class_weight={5: 1.0}, device="cpu").fit(X, y)
    with pytest.raises(NotFittedError):
        LogisticDecoder().predict(X)
    with pytest.raises(ParameterError, match="'penalty' parameter of LogisticDecoderCV"):
        LogisticDecoderCV(penalty=None, device="cpu").fit(X, y)
    with pytest.raises(ParameterError, match="'Cs' parameter"):
        LogisticDecoderCV(Cs=[1.0, -1.0], device="cpu").fit(X, y)
    with pytest.raises(ParameterError, match="'cv' parameter"):
        LogisticDecoderCV(cv=1, device="cpu").fit(X, y)


def test_convergence_warning():
    X, y = _data(K=3)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        dec = LogisticDecoder(max_iter=2, device="cpu").fit(X, y)
    assert dec.n_iter_.tolist() == [2]


# ---------------------------------------------------------------------- the batched engine
def test_batched_problems_equal_separate_solves():
    """Every problem of a batch (own weights, targets, C) is solved as if alone."""
    rng = np.random.default_rng(5)
    n, F, K, M = 150, 6, 3, 5
    X = torch.as_tensor(rng.normal(size=(n, F)))
    codes = torch.as_tensor(rng.integers(0, K, size=(M, n)))
    Y = one_hot(codes, K, torch.float64)
    w = torch.as_tensor(rng.uniform(0, 2, size=(M, n)) * (rng.random((M, n)) > 0.2))
    C = torch.as_tensor([0.01, 0.1, 1.0, 10.0, 100.0])
    batch = solve_logistic(X, Y, w, C, tol=1e-10)
    for m in range(M):
        ref = _sk(C=float(C[m]), **TIGHT).fit(X.numpy(), codes[m].numpy(), sample_weight=w[m].numpy())
        np.testing.assert_allclose(batch.coef[0, m].numpy(), ref.coef_, atol=1e-6)
        np.testing.assert_allclose(batch.intercept[0, m].numpy(), ref.intercept_, atol=1e-6)
    assert batch.converged.all()


def test_grouped_data_equal_separate_solves():
    """Per-group data (time bins) x shared problems (folds): each solved separately."""
    rng = np.random.default_rng(6)
    G, n, F = 4, 80, 5
    X = torch.as_tensor(rng.normal(size=(G, n, F)))
    y = rng.integers(0, 2, n)
    X[:, :, 0] += torch.as_tensor(y)[None] * torch.arange(G)[:, None]
    w = torch.as_tensor(np.stack([np.arange(n) % 3 != k for k in range(3)]).astype(float))
    sol = solve_logistic(X, one_hot(torch.as_tensor(y), 2, torch.float64), w, 1.0, binary=True,
                         tol=1e-10)
    assert sol.coef.shape == (G, 3, 1, F)
    for g in range(G):
        for m in range(3):
            keep = w[m].numpy() > 0
            ref = _sk(**TIGHT).fit(X[g].numpy()[keep], y[keep])
            np.testing.assert_allclose(sol.coef[g, m].numpy(), ref.coef_, atol=1e-6)


@pytest.mark.parametrize("penalty", ["l2", "l1", None])
def test_float32_phase_and_thread_blocks_give_the_float64_solution(monkeypatch, penalty):
    """Large float64 solves run float32 iterations first and split the groups between
    threads; the float64 phase ends on the float64 criterion, so the solutions are
    those of a plain float64 solve (and of scikit-learn)."""
    from neuroml.decoding import _solvers

    rng = np.random.default_rng(8)
    G, n, F = 5, 120, 6
    y = rng.integers(0, 3, n)
    X = torch.as_tensor(rng.normal(size=(G, n, F)) + 4.0)  # an offset: float32 loses digits
    X[:, :, :3] += torch.as_tensor(np.eye(3)[y])[None]
    Y = one_hot(torch.as_tensor(y), 3, torch.float64)
    w = torch.as_tensor(np.stack([np.arange(n) % 3 != k for k in range(3)]).astype(float))
    C = 0.5 if penalty else float("inf")
    kw = dict(penalty=penalty, tol=1e-9, max_iter=20_000)
    monkeypatch.setattr(_solvers, "MIXED_PRECISION_MIN_WORK", float("inf"))
    monkeypatch.setattr(_solvers, "PARALLEL_MIN_WORK", float("inf"))
    plain = solve_logistic(X, Y, w, C, **kw)
    monkeypatch.setattr(_solvers, "MIXED_PRECISION_MIN_WORK", 0)
    monkeypatch.setattr(_solvers, "PARALLEL_MIN_WORK", 0)
    calls, solve_one = [], _solvers._solve_one

    def spy(data, *args, **kwargs):
        calls.append((data.X.dtype, threading.get_ident()))
        return solve_one(data, *args, **kwargs)

    monkeypatch.setattr(_solvers, "_solve_one", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        fast = solve_logistic(X, Y, w, C, **kw)
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    # two blocks of groups, each a float32 phase then a float64 phase, on pool threads
    assert sorted(str(d) for d, _ in calls) == ["torch.float32"] * 2 + ["torch.float64"] * 2
    assert threading.get_ident() not in {t for _, t in calls}
    assert fast.coef.dtype == torch.float64 and bool(fast.converged.all())
    # both stop at the float64 criterion (gradient within tol, or the objective flat to
    # 64 eps): the same probabilities to 1e-6 (measured: 1.7e-7), the coefficients to
    # 1e-5 (the unpenalised intercepts of offset data are the least well determined)
    def proba(sol):
        return torch.softmax(_solvers.logits(X, sol.coef, sol.intercept), dim=2).numpy()

    np.testing.assert_allclose(proba(fast), proba(plain), atol=1e-6)
    np.testing.assert_allclose(fast.coef.numpy(), plain.coef.numpy(), atol=1e-5)
    if penalty == "l2":
        keep = w[1].numpy() > 0
        ref = _sk(C=C, **TIGHT).fit(X[2].numpy()[keep], y[keep])
        np.testing.assert_allclose(fast.coef[2, 1].numpy(), ref.coef_, atol=1e-6)


def test_float32_phase_skipped_beyond_float32_range(monkeypatch):
    """float64 data too large for float32 are solved in float64 only."""
    from neuroml.decoding import _solvers

    X, y = _data(n=120, F=4, K=2)
    big = torch.as_tensor(X * 1e39)
    assert _solvers.prepare_data(big).low() is None
    monkeypatch.setattr(_solvers, "MIXED_PRECISION_MIN_WORK", 0)
    sol = solve_logistic(big, one_hot(torch.as_tensor(y), 2, torch.float64), torch.ones(120),
                         1e-78, binary=True, tol=1e-12)
    ref = _sk(C=1e-78, tol=1e-12, max_iter=10_000).fit(X * 1e39, y)
    np.testing.assert_allclose(sol.coef[0, 0].numpy(), ref.coef_, rtol=1e-4)



@pytest.mark.parametrize("fit_intercept", [True, False])
def test_gram_is_the_centred_second_moment(fit_intercept, monkeypatch):
    """The preconditioner's statistics, centred a few groups at a time, equal NumPy's
    covariance (float64, computed here) on offset data, over more groups than a chunk."""
    from neuroml.decoding import _solvers

    rng = np.random.default_rng(3)
    G, n, F = 40, 300, 24  # 40 groups: several ~2 MiB chunks
    X = rng.normal(1e3, 1.0, (G, n, F)) * rng.uniform(0.5, 2.0, F)  # offset 1e3, std ~1
    data = _solvers.prepare_data(torch.as_tensor(X), fit_intercept)
    gram = data.gram
    assert gram.dtype == torch.float32  # float64 data: formed from the float32 copy
    Xc = X - X.mean(axis=1, keepdims=True) if fit_intercept else X
    ref = np.einsum("gni,gnj->gij", Xc, Xc) / n
    low = np.tril_indices(F)
    got = gram.numpy()[:, low[0], low[1]]
    want = ref[:, low[0], low[1]]
    scale = np.abs(ref).max(axis=(1, 2), keepdims=True)[:, :, 0]
    # float32 rounding of the data (offset 1e3: 6e-5 absolute) is the only error
    assert np.abs(got - want).max() / scale.min() < (1e-3 if fit_intercept else 1e-6)
    # a solve in thread blocks keeps the blocks' statistics for later solves, in order
    kept = _solvers.prepare_data(torch.as_tensor(X), fit_intercept)
    y = rng.integers(0, 2, n)
    monkeypatch.setattr(_solvers, "PARALLEL_MIN_WORK", 0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        solve_logistic(None, one_hot(torch.as_tensor(y), 2, torch.float64), torch.ones(n), 1.0,
                       binary=True, fit_intercept=fit_intercept, data=kept, max_iter=3)
    finally:
        torch.set_num_threads(before)
    assert callable(kept._gram)  # the blocks' statistics, assembled on first use
    torch.testing.assert_close(torch.tril(kept.gram), torch.tril(gram))
    # data within float32's range whose second moment is not (1e22 squared): in float64
    big = _solvers.prepare_data(torch.as_tensor(X[:3] * 1e19), fit_intercept)
    assert big.low() is not None and big.gram.dtype == torch.float64
    np.testing.assert_allclose(big.gram.numpy()[:, low[0], low[1]] / 1e38,
                               ref[:3][:, low[0], low[1]], rtol=1e-6,
                               atol=1e-9 * np.abs(ref).max())

# ---------------------------------------------------------------------- LogisticDecoderCV
def _sk_cv(**kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return LogisticRegressionCV(l1_ratios=(0.0,), use_legacy_attributes=False, **kw)


@pytest.mark.parametrize("scoring", ["accuracy", "neg_log_loss", "balanced_accuracy"])
def test_cv_matches_sklearn(scoring):
    X, y = _data(n=300, F=10, K=4, shift=0.6, weights=[0.4, 0.3, 0.2, 0.1], seed=1)
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    ours = LogisticDecoderCV(Cs=6, cv=cv, scoring=scoring, device="cpu").fit(X, y)
    ref = _sk_cv(Cs=6, cv=cv, scoring=scoring).fit(X, y)
    np.testing.assert_allclose(ours.Cs_, ref.Cs_)
    assert ours.scores_.shape == (3, 6)
    # each solver stops within tol of the optimum: a held-out prediction can flip
    # (one test sample = 1/100 of accuracy); neg_log_loss agrees closely
    diff = np.abs(ours.scores_ - ref.scores_[:, 0, :])
    assert diff.max() <= 1 / 100 + 1e-9 and diff.mean() < 2e-3
    assert ours.C_ == ref.C_
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=5e-3)
    assert abs(ours.score(X, y) - np.mean(ref.predict(X) == y)) <= 0.005


@pytest.mark.parametrize("path", ["sequential", "batched"])
def test_cv_exact_scores_with_tight_tolerance(path):
    X, y = _data(n=300, K=3, shift=0.7, seed=2)
    cv = KFold(4, shuffle=True, random_state=1)
    ours = LogisticDecoderCV(Cs=[0.01, 0.1, 1.0, 10.0], cv=cv, path=path, device="cpu",
                             **TIGHT).fit(X, y)
    ref = _sk_cv(Cs=[0.01, 0.1, 1.0, 10.0], cv=cv, scoring="accuracy", **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.scores_, ref.scores_[:, 0, :], atol=1e-12)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)


def test_cv_batched_path_is_one_solve_and_agrees_with_sequential(monkeypatch):
    """path="batched": every fold x every C in ONE batched solve (the GPU default);
    the same choice of C and scores within a held-out sample of the sequential path."""
    from neuroml.decoding import _solvers

    X, y = _data(n=400, F=12, K=4, shift=0.5, seed=7)
    cv = StratifiedKFold(4, shuffle=True, random_state=0)
    calls, solve = [], _solvers.solve_logistic

    def spy(*args, **kwargs):
        calls.append(np.size(np.asarray(kwargs.get("C", args[3] if len(args) > 3 else None))))
        return solve(*args, **kwargs)

    monkeypatch.setattr(_solvers, "solve_logistic", spy)
    batched = LogisticDecoderCV(Cs=7, cv=cv, path="batched", refit=False, device="cpu").fit(X, y)
    assert calls == [4 * 7]  # one solve of 28 problems
    calls.clear()
    seq = LogisticDecoderCV(Cs=7, cv=cv, path="sequential", refit=False, device="cpu").fit(X, y)
    assert calls == [1] * 7  # one solve of the 4 folds per C
    assert batched.scores_.shape == seq.scores_.shape == (4, 7)
    assert np.abs(batched.scores_ - seq.scores_).max() <= 1 / 100 + 1e-9
    assert batched.C_ == seq.C_
    np.testing.assert_allclose(batched.predict_proba(X), seq.predict_proba(X), atol=5e-3)
    # "auto" is sequential on the CPU
    auto = LogisticDecoderCV(Cs=7, cv=cv, refit=False, device="cpu").fit(X, y)
    np.testing.assert_array_equal(auto.n_iter_, seq.n_iter_)


def test_cv_balanced_refit_false_and_groups():
    X, y = _data(n=300, K=3, weights=[0.6, 0.3, 0.1], seed=4)
    cv = StratifiedKFold(3)
    ours = LogisticDecoderCV(Cs=5, cv=cv, refit=False, class_weight="balanced",
                             device="cpu", **TIGHT).fit(X, y)
    ref = _sk_cv(Cs=5, cv=cv, refit=False, class_weight="balanced", scoring="accuracy",
                 **TIGHT).fit(X, y)
    np.testing.assert_allclose(ours.scores_, ref.scores_[:, 0, :], atol=1e-12)
    assert ours.C_ == pytest.approx(ref.C_)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)
    # group-aware splitting through fit(groups=)
    from sklearn.model_selection import GroupKFold

    groups = np.arange(len(y)) % 6
    dec = LogisticDecoderCV(Cs=3, cv=GroupKFold(3), device="cpu").fit(X, y, groups=groups)
    assert dec.scores_.shape == (3, 3)


def test_cv_planted_C():
    """A clear case: heavy regularisation loses, the chosen C agrees with scikit-learn."""
    X, y = _data(n=500, F=8, K=2, shift=1.5, seed=7)
    cv = StratifiedKFold(5)
    ours = LogisticDecoderCV(Cs=[1e-4, 1e-3, 1.0], cv=cv, device="cpu").fit(X, y)
    ref = _sk_cv(Cs=[1e-4, 1e-3, 1.0], cv=cv, scoring="accuracy").fit(X, y)
    assert ours.C_ == ref.C_ == 1.0
    assert ours.scores_[:, 2].mean() > ours.scores_[:, 0].mean() + 0.1


@pytest.mark.parametrize("K", [2, 4])
@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(K):
    X, y = _data(K=K)
    cpu = LogisticDecoder(device="cpu", **TIGHT).fit(X, y)
    gpu = LogisticDecoder(device="cuda", **TIGHT).fit(X, y)
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-7)
    Pt = gpu.predict_proba(torch.as_tensor(X, device="cuda"))
    assert Pt.device.type == "cuda"
    cv = StratifiedKFold(3)
    a = LogisticDecoderCV(Cs=4, cv=cv, device="cpu", **TIGHT).fit(X, y)
    b = LogisticDecoderCV(Cs=4, cv=cv, device="cuda", **TIGHT).fit(X, y)
    np.testing.assert_allclose(a.scores_, b.scores_, atol=1e-9)
