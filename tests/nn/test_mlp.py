"""MLPClassifier / MLPRegressor against scikit-learn's networks of the same architecture."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from sklearn.datasets import make_moons
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor

import neuroml
from neuroml.errors import ParameterError
from neuroml.nn import MLPClassifier, MLPRegressor

FAST = dict(max_epochs=60, lr=0.01, batch_size=64, device="cpu")


def spiral(n_per_class=150, n_classes=4, noise=0.2, seed=0):
    """Interleaved spiral arms, one class per arm."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for c in range(n_classes):
        r = np.linspace(0.1, 1.0, n_per_class)
        theta = c * 2 * np.pi / n_classes + 4 * r + rng.normal(0, noise, n_per_class)
        X.append(np.c_[r * np.sin(theta), r * np.cos(theta)])
        y.append(np.full(n_per_class, c))
    return np.vstack(X), np.concatenate(y)


def smooth_function(n=800, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 2))
    y = np.sin(2 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * X[:, 1] ** 2 + 0.05 * rng.normal(size=n)
    return X, y


def sklearn_twin(cls, hidden, seed, **kw):
    """scikit-learn's network with the same architecture and optimiser settings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(hidden_layer_sizes=hidden, max_iter=FAST["max_epochs"],
                   learning_rate_init=FAST["lr"], batch_size=FAST["batch_size"],
                   random_state=seed, **kw)


@pytest.mark.parametrize("name", ["moons", "spiral"])
def test_classifier_accuracy_on_par_with_sklearn(name):
    X, y = make_moons(600, noise=0.2, random_state=0) if name == "moons" else spiral()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    hidden = (64, 64)
    ours, theirs = [], []
    for seed in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            theirs.append(sklearn_twin(SkMLPClassifier, hidden, seed).fit(Xtr, ytr).score(Xte, yte))
        clf = MLPClassifier(hidden, random_state=seed, validation_fraction=0.0, **FAST)
        ours.append(clf.fit(Xtr, ytr).score(Xte, yte))
    assert np.mean(ours) >= np.mean(theirs) - 0.03, (ours, theirs)
    assert min(ours) > 0.9


def test_regressor_r2_on_par_with_sklearn():
    X, y = smooth_function()
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    hidden = (64, 64)
    ours, theirs = [], []
    for seed in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            theirs.append(sklearn_twin(SkMLPRegressor, hidden, seed).fit(Xtr, ytr).score(Xte, yte))
        reg = MLPRegressor(hidden, random_state=seed, validation_fraction=0.0, **FAST)
        ours.append(reg.fit(Xtr, ytr).score(Xte, yte))
    assert np.mean(ours) >= np.mean(theirs) - 0.02, (ours, theirs)
    assert min(ours) > 0.95


@pytest.mark.parametrize("kind, activation, n_classes", [
    ("classifier", "relu", 2), ("classifier", "sigmoid", 3), ("regressor", "tanh", 0),
])
def test_loss_and_penalty_scaling_equal_sklearn(kind, activation, n_classes):
    """Our objective at scikit-learn's lbfgs solution equals its reported ``loss_``.

    This pins the data loss (binary logistic, softmax, half squared error) and the L2
    penalty ``alpha / (2 n) sum ||W||^2`` (weights only) to scikit-learn's meaning.
    """
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    if kind == "classifier":
        y = (X[:, 0] + X[:, 1] ** 2 > 0.5).astype(int) + (n_classes == 3) * (X[:, 2] > 0.8)
        sk_cls, ours = SkMLPClassifier, MLPClassifier
    else:
        y = np.sin(X[:, 0]) + X[:, 1]
        sk_cls, ours = SkMLPRegressor, MLPRegressor
    sk_act = {"sigmoid": "logistic"}.get(activation, activation)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = sk_cls(hidden_layer_sizes=(7, 5), activation=sk_act, solver="lbfgs", alpha=0.7,
                    max_iter=25, random_state=0).fit(X, y)
    est = ours((7, 5), activation=activation, alpha=0.7, max_epochs=1, device="cpu",
               random_state=0).fit(X, y)
    with torch.no_grad():
        for layer, W, b in zip(est.module_.linears(), sk.coefs_, sk.intercepts_):
            layer.weight.copy_(torch.as_tensor(W.T))
            layer.bias.copy_(torch.as_tensor(b))
    if kind == "classifier":
        target = torch.as_tensor(np.searchsorted(est.classes_, y))
    else:
        target = torch.as_tensor(y[:, None])
    total, terms = est._loss(est.module_, torch.as_tensor(X), target)
    assert total.item() == pytest.approx(sk.loss_, rel=1e-10)
    weights = sum(float((W**2).sum()) for W in sk.coefs_)
    assert terms["penalty"].item() == pytest.approx(0.5 * 0.7 * weights / len(X), rel=1e-12)


def test_same_random_state_same_numbers_twice():
    X, y = spiral(60, 3)
    kw = dict(hidden_layer_sizes=(16, 16), dropout=0.2, max_epochs=15, device="cpu")
    a = MLPClassifier(random_state=3, **kw).fit(X, y)
    b = MLPClassifier(random_state=3, **kw).fit(X, y)
    cols = ["epoch", "train_loss", "val_loss", "train_penalty", "val_penalty"]
    pd.testing.assert_frame_equal(a.history_[cols], b.history_[cols])
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    for pa, pb in zip(a.module_.parameters(), b.module_.parameters()):
        assert torch.equal(pa, pb)
    c = MLPClassifier(random_state=4, **kw).fit(X, y)
    assert not np.array_equal(a.predict_proba(X), c.predict_proba(X))


def test_fit_leaves_global_rng_untouched():
    X, y = spiral(30, 2)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    np_before = np.random.get_state()[1].copy()
    MLPClassifier((8,), max_epochs=3, random_state=0, device="cpu").fit(X, y)
    MLPClassifier((8,), max_epochs=3, random_state=None, device="cpu").fit(X, y)
    assert torch.equal(torch.get_rng_state(), before)
    np.testing.assert_array_equal(np.random.get_state()[1], np_before)


def test_dropout_trains_and_prediction_is_deterministic():
    X, y = make_moons(300, noise=0.1, random_state=0)
    kw = dict(hidden_layer_sizes=(64,), max_epochs=60, lr=0.01, random_state=0, device="cpu")
    drop = MLPClassifier(dropout=0.5, **kw).fit(X, y)
    plain = MLPClassifier(dropout=0.0, **kw).fit(X, y)
    assert any(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in drop.module_.modules())
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain.module_.modules())
    assert not drop.history_["train_loss"].equals(plain.history_["train_loss"])
    np.testing.assert_array_equal(drop.predict_proba(X), drop.predict_proba(X))  # eval mode
    assert drop.score(X, y) > 0.9
    # training loss under dropout is noisier (higher) than the clean validation loss
    assert drop.history_["train_loss"].iloc[-5:].mean() > drop.history_["val_loss"].iloc[-5:].mean()


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_activations(activation):
    X, y = make_moons(300, noise=0.1, random_state=1)
    clf = MLPClassifier((32, 32), activation=activation, max_epochs=80, lr=0.05, patience=None,
                        validation_fraction=0.0, random_state=0, device="cpu").fit(X, y)
    kinds = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
             "gelu": torch.nn.GELU}
    assert sum(isinstance(m, kinds[activation]) for m in clf.module_.modules()) == 2
    assert clf.score(X, y) > 0.95  # a linear boundary gets about 0.88 here


def test_history_and_early_stopping_attributes():
    X, y = spiral(80, 4)
    clf = MLPClassifier((32,), max_epochs=500, lr=0.01, patience=5, random_state=0,
                        device="cpu").fit(X, y)
    h = clf.history_
    assert list(h.columns) == ["epoch", "train_loss", "val_loss", "train_penalty",
                               "val_penalty", "seconds"]
    assert clf.n_iter_ == len(h) < 500  # stopped early
    assert clf.best_epoch_ == int(h["val_loss"].idxmin()) + 1
    assert clf.n_iter_ == clf.best_epoch_ + 5
    assert h["val_loss"].notna().all()
    assert clf.n_outputs_ == 4 and list(clf.classes_) == [0, 1, 2, 3]


def test_string_labels_binary_and_proba():
    X, y = make_moons(200, noise=0.1, random_state=2)
    labels = np.array(["left", "right"])[y]
    clf = MLPClassifier((16,), lr=0.02, max_epochs=60, random_state=0, device="cpu")
    clf.fit(X, labels)
    assert clf.n_outputs_ == 1 and list(clf.classes_) == ["left", "right"]
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(1)])
    assert clf.score(X, labels) > 0.9
    from_tensor = clf.predict(torch.as_tensor(X))  # string labels cannot be a tensor
    assert isinstance(from_tensor, np.ndarray)
    np.testing.assert_array_equal(from_tensor, clf.predict(X))


def test_one_class_is_refused():
    with pytest.raises(ParameterError, match="at least 2 classes; got 1 class"):
        MLPClassifier(device="cpu").fit(np.zeros((10, 2)), np.ones(10))


@pytest.mark.parametrize("params, match", [
    (dict(activation="softplus"),
     r"The 'activation' parameter of MLPClassifier must be a str among \{'relu', 'tanh', "
     r"'sigmoid', 'gelu'\}. Got 'softplus' instead."),
    (dict(hidden_layer_sizes=(10, 0)), r"'hidden_layer_sizes' parameter .*Got \(10, 0\)"),
    (dict(dropout=1.0), r"'dropout' parameter of MLPClassifier must be a float in the range "
                        r"\[0, 1\)"),
    (dict(alpha=-1.0), r"'alpha' parameter"),
    (dict(optimizer="rmsprop"), r"'optimizer' parameter"),
    (dict(batch_size=0), r"'batch_size' parameter of MLPClassifier must be an int in the range "
                         r"\[1, inf\)"),
])
def test_bad_parameters(params, match):
    with pytest.raises(ParameterError, match=match):
        MLPClassifier(**params).fit(np.zeros((10, 2)), np.arange(10) % 2)


def test_save_load_and_pickle_round_trip(tmp_path):
    X, y = spiral(50, 3)
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier((16, 8), dropout=0.1, max_epochs=10, random_state=0, device="cpu")
    clf.fit(X, labels)
    loaded = neuroml.load(clf.save(tmp_path / "clf.pt"))
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    assert loaded.device_ == torch.device("cpu") and not loaded.module_.training
    assert next(loaded.module_.parameters()).dtype == torch.float64
    pd.testing.assert_frame_equal(loaded.history_, clf.history_)
    unpickled = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(unpickled.predict_proba(X), clf.predict_proba(X))

    Xr, yr = smooth_function(100)
    Y = np.c_[yr, -yr]
    reg = MLPRegressor((8,), max_epochs=5, random_state=0, device="cpu")
    reg.fit(Xr.astype(np.float32), Y)
    loaded = neuroml.load(reg.save(tmp_path / "reg.pt"))
    assert next(loaded.module_.parameters()).dtype == torch.float32
    np.testing.assert_array_equal(loaded.predict(Xr.astype(np.float32)),
                                  reg.predict(Xr.astype(np.float32)))


def test_dataarray_and_tensor_in_out():
    X, y = spiral(40, 3)
    n = len(X)
    Xda = xr.DataArray(X, dims=("time", "unit"),
                       coords={"time": np.arange(n) * 0.1, "trial": ("time", np.arange(n) // 10)})
    clf = MLPClassifier((16,), max_epochs=10, random_state=0, device="cpu").fit(Xda, y)
    proba = clf.predict_proba(Xda)
    assert proba.dims == ("time", "class") and list(proba["class"].values) == [0, 1, 2]
    np.testing.assert_array_equal(proba["trial"], Xda["trial"])
    pred = clf.predict(Xda)
    assert pred.dims == ("time",) and "trial" in pred.coords
    np.testing.assert_array_equal(pred.values, clf.predict(X))

    Xt = torch.as_tensor(X)
    pt = clf.predict(Xt)
    assert isinstance(pt, torch.Tensor) and pt.device == clf.device_
    np.testing.assert_array_equal(pt.numpy(), clf.predict(X))
    assert isinstance(clf.predict_proba(Xt), torch.Tensor)

    Xr, yr = smooth_function(120)
    Y = xr.DataArray(np.c_[yr, 2 * yr], dims=("time", "kinematic"),
                     coords={"kinematic": ["x", "y"]})
    Xrda = xr.DataArray(Xr, dims=("time", "unit"))
    reg = MLPRegressor((8,), max_epochs=5, random_state=0, device="cpu").fit(Xrda, Y)
    out = reg.predict(Xrda)
    assert out.dims == ("time", "kinematic") and list(out["kinematic"].values) == ["x", "y"]
    assert reg.predict(torch.as_tensor(Xr)).shape == (120, 2)
    reg1 = MLPRegressor((8,), max_epochs=5, random_state=0, device="cpu").fit(Xr, yr)
    assert reg1.predict(Xr).shape == (120,)


def test_float32_trains_in_float32():
    X, y = make_moons(100, noise=0.1, random_state=0)
    clf = MLPClassifier((8,), max_epochs=5, random_state=0, device="cpu")
    clf.fit(X.astype(np.float32), y)
    assert next(clf.module_.parameters()).dtype == torch.float32
    assert clf.predict_proba(X).dtype == np.float32  # float64 input is cast to the network's


def test_sgd_and_adamw_optimisers():
    X, y = smooth_function(300)
    for opt in ("sgd", "adamw"):
        reg = MLPRegressor((32,), optimizer=opt, lr=0.01, max_epochs=40, random_state=0,
                           device="cpu").fit(X, y)
        assert reg.score(X, y) > 0.5
