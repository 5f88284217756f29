"""The estimator base class: validation, fitted-state checks, pickling, save / load."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

import neuroml
from neuroml._serialization import _FORMAT, _from_json, _to_json
from neuroml.base import NeuroMLEstimator
from neuroml.decoding.linear import LinearDecoder
from neuroml.errors import (
    DeviceError,
    NeuroMLError,
    NotFittedError,
    ParameterError,
    RecordingError,
)
from neuroml.nn import MLPClassifier, MLPRegressor

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def small_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X, y


@pytest.fixture
def fitted_mlp():
    X, y = small_problem()
    return MLPClassifier((8,), max_epochs=5, random_state=0, device="cpu").fit(X, y), X


# ---------------------------------------------------------------------- save / load
def test_save_load_round_trip_and_atomic_write(tmp_path, fitted_mlp):
    clf, X = fitted_mlp
    path = clf.save(tmp_path / "sub" / "model.pt")
    assert path.is_file()
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]  # no temp file left
    loaded = neuroml.load(path)
    assert type(loaded) is MLPClassifier and loaded.get_params() == clf.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    pd.testing.assert_frame_equal(loaded.history_, clf.history_)


def test_saved_attributes_of_every_kind_round_trip(tmp_path):
    X, y = small_problem()
    est = LinearDecoder(device="cpu").fit(X, y.astype(float))
    est.extra_ = {
        "tuple": (1, 2.5, "a"), "nested": [np.float64(1.5), None, True],
        "non_str_keys": {1: "one", (2, 3): [4]},
        "labels": np.array(["left", "right"]), "objects": np.array([1, "a"], dtype=object),
        "frame": pd.DataFrame({"epoch": [1, 2], "loss": [0.5, np.nan]}),
        "device": torch.device("cpu"), "dtype": torch.float32,
    }
    est.mask_ = np.array([True, False])
    loaded = neuroml.load(est.save(tmp_path / "m.pt"))
    got = loaded.extra_
    assert got["tuple"] == (1, 2.5, "a") and got["nested"] == [1.5, None, True]
    assert got["non_str_keys"] == {1: "one", (2, 3): [4]}
    np.testing.assert_array_equal(got["labels"], ["left", "right"])
    assert got["labels"].dtype.kind == "U" and got["objects"].dtype == object
    pd.testing.assert_frame_equal(got["frame"], est.extra_["frame"])
    assert got["device"] == torch.device("cpu") and got["dtype"] is torch.float32
    assert loaded.mask_.dtype == bool and loaded.mask_.tolist() == [True, False]
    np.testing.assert_array_equal(loaded.coef_, est.coef_)


def test_unsaveable_attribute_is_a_clear_error(tmp_path):
    X, y = small_problem()
    est = LinearDecoder(device="cpu").fit(X, y.astype(float))
    est.callback_ = print
    with pytest.raises(ParameterError, match="Cannot save a value of type builtin_function"):
        est.save(tmp_path / "m.pt")


class _Payload:
    """Pickles into a call that creates a file: proof of code execution on load."""

    def __init__(self, target: Path):
        self.target = target

    def __reduce__(self):
        return (Path.touch, (self.target,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_load_refuses_pickled_code_and_never_runs_it(tmp_path, fitted_mlp):
    clf, _ = fitted_mlp
    good = torch.load(clf.save(tmp_path / "good.pt"), weights_only=True)

    # 1. a neuroml archive with an object smuggled in next to the tensors
    sentinel = tmp_path / "pwned_torch"
    tampered = dict(good, attributes=_Payload(sentinel))
    torch.save(tampered, tmp_path / "tampered.pt")
    with pytest.raises(NeuroMLError, match="Refusing to load .*tampered.pt"):
        neuroml.load(tmp_path / "tampered.pt")
    assert not sentinel.exists()

    # 2. a plain pickle file
    sentinel2 = tmp_path / "pwned_pickle"
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump({"format": _FORMAT, "payload": _Payload(sentinel2)}, fh)
    with pytest.raises(NeuroMLError, match="Refusing to load"):
        neuroml.load(tmp_path / "plain.pkl")
    assert not sentinel2.exists()

    # the payload is live: an unrestricted unpickler does run it
    with open(tmp_path / "plain.pkl", "rb") as fh:
        pickle.load(fh)
    assert sentinel2.exists()


def test_load_refuses_foreign_files_and_classes(tmp_path, fitted_mlp):
    clf, _ = fitted_mlp
    with pytest.raises(RecordingError, match="No saved estimator at") as info:
        neuroml.load(tmp_path / "missing.pt")
    assert isinstance(info.value, OSError)
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(NeuroMLError, match="is not a neuroml estimator file"):
        neuroml.load(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(NeuroMLError, match="Refusing to load"):
        neuroml.load(tmp_path / "text.pt")
    good = torch.load(clf.save(tmp_path / "good.pt"), weights_only=True)
    for cls in ("os.system", "collections.OrderedDict", "neuroml.errors.NeuroMLError"):
        torch.save(dict(good, **{"class": cls}), tmp_path / "cls.pt")
        with pytest.raises(NeuroMLError, match="not neuroml's|not an estimator"):
            neuroml.load(tmp_path / "cls.pt")


def test_model_saved_on_cuda_loads_on_cpu_only_machine(tmp_path, fitted_mlp):
    """Simulated: the archive says the model lived on cuda:0; this machine has no GPU."""
    import json

    clf, X = fitted_mlp
    payload = torch.load(clf.save(tmp_path / "m.pt"), weights_only=True)
    attributes = json.loads(payload["attributes"])
    assert attributes["device_"] == {"__device__": "cpu"}
    attributes["device_"] = {"__device__": "cuda:0"}
    payload["attributes"] = json.dumps(attributes)
    torch.save(payload, tmp_path / "from_gpu.pt")
    loaded = neuroml.load(tmp_path / "from_gpu.pt")
    if torch.cuda.is_available():
        assert loaded.device_.type == "cuda"
    else:
        assert loaded.device_ == torch.device("cpu")
        assert next(loaded.module_.parameters()).device.type == "cpu"
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
        with pytest.raises(DeviceError, match="available devices"):
            neuroml.load(tmp_path / "from_gpu.pt", device="cuda")
    assert neuroml.load(tmp_path / "from_gpu.pt", device="cpu").device_ == torch.device("cpu")


@pytest.mark.cuda
@requires_cuda
def test_cuda_model_saves_pickles_and_loads_on_cpu(tmp_path):
    X, y = small_problem()
    clf = MLPClassifier((8,), max_epochs=5, random_state=0, device="cuda").fit(X, y)
    assert next(clf.module_.parameters()).is_cuda
    state = clf.__getstate__()
    assert all(not t.is_cuda for t in state["module_"].state_dict().values())
    assert next(clf.module_.parameters()).is_cuda  # the live module did not move
    on_cpu = neuroml.load(clf.save(tmp_path / "m.pt"), device="cpu")
    np.testing.assert_allclose(on_cpu.predict_proba(X), clf.predict_proba(X), rtol=1e-5)
    again = neuroml.load(tmp_path / "m.pt")
    assert again.device_.type == "cuda"
    restored = pickle.loads(pickle.dumps(clf))
    assert next(restored.module_.parameters()).is_cuda


def test_cuda_pickle_loads_on_cpu_only_machine_in_subprocess(tmp_path, fitted_mlp):
    """A pickle whose device_ names a GPU unpickles onto the CPU where there is none."""
    clf, X = fitted_mlp
    clf_copy = pickle.loads(pickle.dumps(clf))
    clf_copy.device_ = torch.device("cuda:0")
    state = clf_copy.__getstate__()
    assert state["device_"] == "cuda:0"
    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps(clf_copy))
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "p.npy", clf.predict_proba(X))
    code = (
        "import pickle, sys, numpy as np;"
        "est = pickle.loads(open(sys.argv[1], 'rb').read());"
        "assert str(est.device_) == 'cpu', est.device_;"
        "X = np.load(sys.argv[2]); p = np.load(sys.argv[3]);"
        "np.testing.assert_array_equal(est.predict_proba(X), p)"
    )
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    result = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "X.npy"),
                             str(tmp_path / "p.npy")], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_pickling_moves_modules_and_tensors_to_cpu_as_copies(fitted_mlp):
    clf, X = fitted_mlp
    clf.scratch_ = torch.arange(3.0)
    state = clf.__getstate__()
    assert state["module_"] is not clf.module_
    assert all(t.device.type == "cpu" for t in state["module_"].state_dict().values())
    assert state["scratch_"].device.type == "cpu"
    assert isinstance(state["device_"], str)
    restored = pickle.loads(pickle.dumps(clf))
    assert restored.device_ == torch.device("cpu")
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("est, message", [
    (MLPClassifier(lr=-1),
     "The 'lr' parameter of MLPClassifier must be a float in the range (0, inf). Got -1 instead."),
    (MLPRegressor(validation_fraction=1.0),
     "The 'validation_fraction' parameter of MLPRegressor must be a float in the range [0, 1). "
     "Got 1.0 instead."),
    (MLPClassifier(max_epochs=2.5),
     "The 'max_epochs' parameter of MLPClassifier must be an int in the range [1, inf). "
     "Got 2.5 instead."),
    (MLPClassifier(patience=0),
     "The 'patience' parameter of MLPClassifier must be an int in the range [1, inf) or None. "
     "Got 0 instead."),
    (MLPClassifier(random_state="seed"),
     "The 'random_state' parameter of MLPClassifier must be an int, a numpy "
     "RandomState/Generator or None. Got 'seed' instead."),
    (MLPClassifier(verbose="yes"),
     "The 'verbose' parameter of MLPClassifier must be an instance of 'bool' or an int in the "
     "range [0, inf). Got 'yes' instead."),
    (LinearDecoder(fit_intercept=1),
     "The 'fit_intercept' parameter of LinearDecoder must be an instance of 'bool'. Got 1 "
     "instead."),
    (LinearDecoder(device=0),
     "The 'device' parameter of LinearDecoder must be a device name ('auto', 'cpu', 'cuda', "
     "'cuda:N'). Got 0 instead."),
])
def test_parameter_validation_messages(est, message):
    X, y = small_problem()
    with pytest.raises(ParameterError) as info:
        est.fit(X, y)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_parameters_are_not_touched_by_fit():
    X, y = small_problem()
    est = MLPClassifier((8,), max_epochs=2, device="auto", random_state=None)
    est.fit(X, y)
    assert est.device == "auto" and est.random_state is None  # resolved into device_ only
    assert est.device_.type in ("cpu", "cuda")


@pytest.mark.parametrize("est", [LinearDecoder(), MLPClassifier(), MLPRegressor()])
def test_not_fitted_error_is_neuromls_and_sklearns(est):
    X, _ = small_problem()
    with pytest.raises(NotFittedError, match=f"This {type(est).__name__} instance is not fitted"):
        est.predict(X)
    with pytest.raises(SklearnNotFittedError):
        est.predict(X)
    with pytest.raises(NeuroMLError):
        est.save("never-written.pt")
    assert not Path("never-written.pt").exists()


def test_supervised_estimators_require_y():
    X, _ = small_problem()
    with pytest.raises(ParameterError, match="requires y to be passed"):
        LinearDecoder().fit(X, None)


def test_tensor_input_validation():
    X, y = small_problem()
    est = LinearDecoder(device="cpu").fit(torch.as_tensor(X), y.astype(float))
    bad = torch.as_tensor(X).clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ParameterError, match="contains NaN or infinity"):
        est.predict(bad)
    with pytest.raises(ParameterError, match="X has 3 features, but LinearDecoder is expecting 4"):
        est.predict(torch.as_tensor(X[:, :3]))
    with pytest.raises(ParameterError, match="expects a 2-D tensor"):
        est.predict(torch.as_tensor(X[0]))
    with pytest.raises(ValueError, match="NaN"):
        LinearDecoder(device="cpu").fit(torch.as_tensor(X), torch.full((60,), float("nan")))
    assert est.predict(torch.as_tensor(X, dtype=torch.float16)).dtype == torch.float32
    ints = est.predict(torch.as_tensor(np.round(X * 10).astype(np.int64)))
    assert ints.dtype == torch.float64


def test_plain_arrays_skip_validate_data_and_keep_its_results(monkeypatch):
    """Finite float arrays of the right shapes are checked without scikit-learn's
    validate_data (the same n_features_in_, a stale feature_names_in_ dropped); anything
    else goes through it, for its messages."""
    import neuroml.base as base

    X, y = small_problem()
    y = y.astype(float)
    calls = []
    real = base.validate_data
    monkeypatch.setattr(base, "validate_data", lambda *a, **k: calls.append(1) or real(*a, **k))
    frame = pd.DataFrame(X, columns=list("abcd"))
    est = LinearDecoder(device="cpu").fit(frame, y)
    assert list(est.feature_names_in_) == list("abcd") and len(calls) == 1
    est.fit(X, y)  # plain arrays: no validate_data, and the names are gone as sklearn does
    assert len(calls) == 1 and est.n_features_in_ == 4
    assert not hasattr(est, "feature_names_in_")
    np.testing.assert_allclose(est.predict(X), LinearDecoder(device="cpu").fit(frame, y)
                               .predict(frame), rtol=1e-12)
    assert len(calls) == 3  # the DataFrame fit and predict (est.predict(X) is plain)
    nan_X = X.copy()
    nan_X[3, 1] = np.nan
    for bad_X, bad_y in [(nan_X, y), (X, np.full(60, np.inf)), (X, y[:50])]:
        calls.clear()
        with pytest.raises(ValueError):
            LinearDecoder(device="cpu").fit(bad_X, bad_y)
        assert calls == [1]  # sklearn's own message
    for other_X, other_y in [(np.round(X * 10).astype(int), y), (X, y.astype(object))]:
        calls.clear()  # valid, converted by validate_data
        LinearDecoder(device="cpu").fit(other_X, other_y)
        assert calls == [1]
    huge = np.full((60, 4), 1e308) * np.r_[1, -1][np.arange(60) % 2][:, None]
    assert not base._plain(huge, None, 1, False)  # the sum overflows: the full check
    assert base._plain(X, y, 1, False) and not base._plain(X, y[:, None], 1, False)
    assert base._plain(X, y[:, None], 1, True) and not base._plain(X[:0], None, 1, False)


class _TrialMean(NeuroMLEstimator):
    """A minimal 3-D (trial, time, unit) transformer for testing the base class."""

    def fit(self, X, y=None):
        self._resolve_device()
        Xt, _, _ = self._validate_X(X, reset=True, ndim=3)
        self.mean_ = Xt.mean(dim=(0, 1)).cpu().numpy()
        return self

    def transform(self, X):
        self._check_fitted()
        Xt, _, info = self._validate_X(X, reset=False, ndim=3)
        return self._wrap(info, Xt.mean(dim=-1), None)


def test_three_d_input_counts_units_not_time_bins():
    import xarray as xr

    X = np.random.default_rng(0).normal(size=(5, 7, 3))  # trials, time bins, units
    est = _TrialMean().fit(X)
    assert est.n_features_in_ == 3
    np.testing.assert_allclose(est.transform(X), X.mean(-1))
    da = xr.DataArray(X, dims=("trial", "time", "unit"), coords={"time": np.arange(7) * 0.1})
    out = est.transform(da)
    assert out.dims == ("trial", "time") and "time" in out.coords
    with pytest.raises(ParameterError, match="X has 4 features, but _TrialMean is expecting 3"):
        est.transform(np.zeros((5, 7, 4)))
    with pytest.raises(ParameterError, match=r"expects 3-D input \(trial, time, unit\)"):
        est.transform(np.zeros((5, 3)))
    with pytest.raises(ParameterError, match="expects a 3-D DataArray"):
        est.transform(xr.DataArray(np.zeros((5, 3)), dims=("time", "unit")))


# ------------------------------------------------- nested estimators and DataArrays
def epochs_problem(seed=0, continuous=False):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(48, 4, 5))
    z = rng.normal(size=48)
    X[:, :, 0] += 2.0 * z[:, None]  # planted: unit 0 carries the target in every bin
    y = z if continuous else (z > 0).astype(int)
    return xr.DataArray(X, dims=("trial", "time", "unit"),
                        coords={"time": [-0.1, 0.0, 0.1, 0.2]}, attrs={"align_to": "cue"}), y


@pytest.mark.parametrize("continuous", [False, True])
def test_time_resolved_decoder_with_nested_estimators_round_trips(tmp_path, continuous):
    X, y = epochs_problem(continuous=continuous)
    kwargs = {"estimator": LinearDecoder(alpha=0.5)} if continuous else {}
    dec = neuroml.TimeResolvedDecoder(cv=3, device="cpu", **kwargs).fit(X, y)
    loaded = neuroml.load(dec.save(tmp_path / "trd.pt"))
    assert loaded.get_params(deep=False).keys() == dec.get_params(deep=False).keys()
    if continuous:
        assert type(loaded.estimator) is LinearDecoder and loaded.estimator.alpha == 0.5
        assert not hasattr(loaded.estimator, "coef_")  # the parameter stays unfitted
    assert len(loaded.estimators_) == len(dec.estimators_) == 4
    assert all(type(a) is type(b) for a, b in zip(loaded.estimators_, dec.estimators_))
    np.testing.assert_array_equal(np.asarray(loaded.predict(X)), np.asarray(dec.predict(X)))
    xr.testing.assert_identical(loaded.scores_, dec.scores_)
    xr.testing.assert_identical(loaded.mean_scores_, dec.mean_scores_)
    np.testing.assert_array_equal(loaded.times_, [-0.1, 0.0, 0.1, 0.2])
    # the planted signal is decodable: far above chance (0.5) / zero R^2
    assert float(loaded.mean_scores_.min()) > (0.6 if continuous else 0.7)


def test_dataarray_and_sklearn_parameter_encoding():
    from sklearn.linear_model import Ridge

    da = xr.DataArray(np.arange(6.0).reshape(2, 3), dims=("fold", "time"),
                      coords={"time": [0.5, 1.0, 1.5], "label": ("fold", ["a", "b"])},
                      attrs={"scoring": "r2"}, name="score")
    xr.testing.assert_identical(_from_json(_to_json(da)), da)
    ridge = _from_json(_to_json([Ridge(alpha=3.0), (LinearDecoder(alpha=2.0),)], []))
    assert type(ridge[0]) is Ridge and ridge[0].get_params() == Ridge(alpha=3.0).get_params()
    assert type(ridge[1][0]) is LinearDecoder and ridge[1][0].alpha == 2.0
    X, y = small_problem()
    with pytest.raises(ParameterError, match="fitted scikit-learn estimator .*Ridge"):
        _to_json(Ridge().fit(X, y), [])


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_tampered_nested_estimator_file_is_refused(tmp_path):
    X, y = epochs_problem()
    dec = neuroml.TimeResolvedDecoder(cv=3, device="cpu").fit(X, y)
    good = torch.load(dec.save(tmp_path / "good.pt"), weights_only=True)
    sentinel = tmp_path / "ran.txt"
    torch.save(dict(good, blobs=[*good["blobs"], _Payload(sentinel)]), tmp_path / "code.pt")
    with pytest.raises(NeuroMLError, match="Refusing to load"):
        neuroml.load(tmp_path / "code.pt")
    assert not sentinel.exists()
    for cls in ["subprocess.Popen", "builtins.eval", "neuroml.io.recording.Recording",
                "sklearn.utils.Bunch"]:
        text = good["attributes"].replace("neuroml.decoding.logistic.LogisticDecoder", cls)
        torch.save(dict(good, attributes=text), tmp_path / "cls.pt")
        with pytest.raises(NeuroMLError, match="not neuroml's|not an estimator"):
            neuroml.load(tmp_path / "cls.pt")


def test_import_is_light_and_not_fitted_error_is_sklearns():
    """``import neuroml`` loads neither torch nor scikit-learn (the CLI's --help stays
    fast); NotFittedError, made on first use, is scikit-learn's and neuroml's at once."""
    code = (
        "import sys, neuroml\n"
        "assert 'torch' not in sys.modules and 'sklearn' not in sys.modules, 'heavy import'\n"
        "from sklearn.exceptions import NotFittedError as S\n"
        "from neuroml.errors import NotFittedError as E\n"
        "assert E is neuroml.NotFittedError and issubclass(E, S)\n"
        "assert issubclass(E, neuroml.NeuroMLError) and issubclass(E, ValueError)\n"
        "import pickle\n"
        "assert type(pickle.loads(pickle.dumps(E('x')))) is E\n"
        "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
