"""Common tests over every estimator and every public method, on every device present.

The CPU always; CUDA when there is one (marked ``cuda``, skipped without). Estimators are
discovered from the package (``neuroml._discovery.all_estimators``), so a new estimator
is covered the day it is added. Estimators whose input is not ``(n_samples,
n_features)`` (sequences of trials, ``(trial, time, unit)`` arrays, images) give their
own small data through a ``_example_data()`` classmethod returning
``(fit_args, call_args)``.

What is checked, per estimator and device:

- ``fit`` returns the estimator; ``device_`` is the requested device; fitted state is
  NumPy / pandas / xarray (torch modules only in ``_module_attributes``);
- every public method (``transform``, ``inverse_transform``, ``predict``,
  ``predict_proba``, ``decision_function``, ``score``, and ``values`` of the choice
  models) runs; NumPy in gives no tensor out; a tensor in gives tensors on the
  estimator's device;
- the same ``random_state`` gives the same numbers twice;
- ``save`` / ``neuroml.load`` (onto the same device, and onto the CPU) give the same
  outputs;
- estimators with a ``history_`` draw their training curves.

On a GPU, :func:`test_gpu_results_match_cpu` compares the CPU's and the GPU's results on
the same data within stated tolerances (see its docstring).
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from sklearn.base import clone, is_classifier, is_regressor

import neuroml
from neuroml._discovery import all_estimators

ESTIMATORS = all_estimators()
HAS_CUDA = torch.cuda.is_available()
DEVICES = [
    pytest.param("cpu", id="cpu"),
    pytest.param("cuda", id="cuda", marks=[
        pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")]),
]
METHODS = ("transform", "inverse_transform", "predict", "predict_proba", "decision_function",
           "score", "values")


def _make(cls, device, **extra):
    params = {**getattr(cls, "_test_params", {}), "device": device, **extra}
    est = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
    if "random_state" in est.get_params():
        est.set_params(random_state=0)
    return est


def _example(cls):
    """``(fit_args, call_args)``: the estimator's own example, or generic 2-D data."""
    if hasattr(cls, "_example_data"):
        return cls._example_data()
    rng = np.random.default_rng(0)
    if getattr(cls, "_input_ndim", 2) == 3:  # (trial, time, unit) with a label per trial
        y = np.arange(36) % 2
        X = rng.normal(size=(36, 4, 5)) + y[:, None, None] * np.array([1.5, 0, 0, 0, 0])
        return (X, y), (X, y)
    X = rng.poisson(3.0, size=(60, 6)).astype(np.float64)  # counts: valid for every loss
    est = cls()
    if is_classifier(est):
        y = np.arange(60) % 3
        X[:, 0] += 3 * y
        return (X, y), (X, y)
    if is_regressor(est):
        y = X @ rng.normal(size=6) + 0.1 * rng.normal(size=60)
        return (X, y), (X, y)
    return (X,), (X,)


def _as_tensor(arg, device):
    if isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
        return torch.as_tensor(arg, device=device)
    return arg


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _n_positional(method) -> int:
    """How many positional arguments a method takes (``predict(X)`` 1, ``score(X, y)`` 2)."""
    return sum(p.kind in _POSITIONAL for p in inspect.signature(method).parameters.values())


def _n_required(method) -> int:
    return sum(p.kind in _POSITIONAL and p.default is inspect.Parameter.empty
               for p in inspect.signature(method).parameters.values())


def _outputs(est, call_args) -> dict:
    """Every public method's output on ``call_args``, as NumPy / pandas / float."""
    out = {}
    for name in METHODS:
        method = getattr(est, name, None)
        if method is None:
            continue
        if name == "inverse_transform":
            if "transform" not in out:
                continue
            value = method(out["transform"])
        elif _n_required(method) > len(call_args):
            continue  # e.g. score(images, responses) given images only
        else:
            value = method(*call_args[: _n_positional(method)])
        assert not isinstance(value, torch.Tensor), (name, "NumPy in must give no tensor out")
        out[name] = value
    return out


def _assert_same(a: dict, b: dict, rtol=1e-6, atol=1e-8):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        if isinstance(x, pd.DataFrame | pd.Series):
            pd.testing.assert_frame_equal(pd.DataFrame(x), pd.DataFrame(y), rtol=rtol, atol=atol)
            continue
        x = np.asarray(x.values if isinstance(x, xr.DataArray) else x)
        y = np.asarray(y.values if isinstance(y, xr.DataArray) else y)
        if x.dtype.kind in "fc":
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol, err_msg=key)
        else:
            np.testing.assert_array_equal(x, y, err_msg=key)


def _has_method(cls, name):
    return callable(getattr(cls, name, None))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, cls", ESTIMATORS)
def test_every_method_on_every_device(name, cls, device, tmp_path):
    fit_args, call_args = _example(cls)
    est = _make(cls, device)
    assert est.fit(*fit_args) is est
    assert est.device_.type == device

    # fitted state is NumPy / pandas / xarray; torch lives only in the declared modules
    modules = set(getattr(cls, "_module_attributes", ()))
    for key, value in vars(est).items():
        if key.endswith("_") and not key.startswith("_") and key not in modules:
            assert not isinstance(value, torch.Tensor | torch.nn.Module), (name, key)

    out = _outputs(est, call_args)
    assert out or _has_method(cls, "fit")  # an estimator with fit only (e.g. TDModel) is fine

    # tensors in: tensors out on the estimator's device
    tensor_args = [_as_tensor(a, est.device_) for a in call_args]
    if any(isinstance(a, torch.Tensor) for a in tensor_args):
        for method in ("transform", "predict", "predict_proba", "decision_function"):
            if method in out:
                fn = getattr(est, method)
                value = fn(*tensor_args[: _n_positional(fn)])
                if isinstance(value, torch.Tensor):
                    assert value.device.type == device, (name, method)
                    np.testing.assert_allclose(value.detach().cpu().numpy(),
                                               np.asarray(out[method], dtype=float),
                                               rtol=1e-5, atol=1e-6, err_msg=method)

    # the same random_state gives the same numbers twice
    again = _make(cls, device).fit(*fit_args)
    _assert_same(out, _outputs(again, call_args), rtol=1e-5, atol=1e-6)

    # save / load: the same outputs, on the same device and on the CPU
    path = est.save(tmp_path / f"{name}.pt")
    _assert_same(out, _outputs(neuroml.load(path), call_args), rtol=1e-6, atol=1e-7)
    on_cpu = neuroml.load(path, device="cpu")
    assert on_cpu.device_.type == "cpu"
    _assert_same(out, _outputs(on_cpu, call_args), rtol=1e-4, atol=1e-5)

    # a clone is unfitted and has the same parameters
    assert clone(est).get_params() == est.get_params()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name, cls", [(n, c) for n, c in ESTIMATORS
                                       if "max_epochs" in c().get_params()])
def test_training_curves_plot_for_a_fit_on_any_device(name, cls, device):
    from neuroml.plotting import plot_training_curves

    fit_args, _ = _example(cls)
    est = _make(cls, device).fit(*fit_args)
    ax = plot_training_curves(est)
    assert len(ax.lines) >= 1


# ----------------------------------------------------------------------------- CPU vs GPU
def _gpu_cases():
    """(name, make(device), data, compare) for the CPU-versus-GPU comparison.

    Tolerances: decoders solve the same convex problems, so their predictions agree on
    at least 98 % of samples; PCA's subspace agrees to 1e-4 degrees; trained networks
    start from the same initial weights and draw the same batches, but float rounding
    differs between devices and grows during training, so their quality metrics (R2,
    accuracy, ELBO, consistency) agree within the noise of training (stated per case).
    """
    from sklearn.datasets import make_classification, make_regression

    Xc, yc = make_classification(400, 20, n_informative=8, n_classes=3, random_state=0)
    Xr, yr = make_regression(400, 20, n_informative=8, noise=5.0, random_state=0)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(600, 3))
    counts = rng.poisson(np.exp(0.5 + z @ rng.normal(scale=0.5, size=(3, 30)))).astype(float)
    trials = rng.normal(size=(80, 6, 10)) + (np.arange(80) % 2)[:, None, None] * 0.8

    def agree(a, b, X, y):
        return np.mean(a.predict(X) == b.predict(X)) >= 0.98

    def close_r2(a, b, X, y, tol=0.02):
        return abs(a.score(X, y) - b.score(X, y)) <= tol

    def same_subspace(a, b, X, y):
        import scipy.linalg

        angles = np.degrees(scipy.linalg.subspace_angles(a.components_.T, b.components_.T))
        return angles.max() < 1e-4

    def close_score(tol):
        return lambda a, b, X, y: abs(a.score(X) - b.score(X)) <= tol * abs(a.score(X)) + tol

    return [
        ("LogisticDecoder", lambda d: neuroml.LogisticDecoder(device=d), (Xc, yc), agree),
        ("LogisticDecoderCV", lambda d: neuroml.LogisticDecoderCV(Cs=5, cv=3, device=d),
         (Xc, yc), agree),
        ("LinearDecoder", lambda d: neuroml.LinearDecoder(device=d), (Xr, yr),
         lambda a, b, X, y: close_r2(a, b, X, y, 1e-6)),
        ("PCA", lambda d: neuroml.PCA(5, device=d), (Xr, None), same_subspace),
        ("TimeResolvedDecoder", lambda d: neuroml.TimeResolvedDecoder(cv=3, device=d),
         (trials, np.arange(80) % 2),
         lambda a, b, X, y: np.abs(a.mean_scores_.values - b.mean_scores_.values).max() < 0.03),
        ("MLPClassifier", lambda d: neuroml.MLPClassifier((32,), max_epochs=30, random_state=0,
                                                          device=d), (Xc, yc),
         lambda a, b, X, y: abs(a.score(X, y) - b.score(X, y)) <= 0.05),
        ("MLPRegressor", lambda d: neuroml.MLPRegressor((32,), max_epochs=30, random_state=0,
                                                        device=d), (Xr, yr),
         lambda a, b, X, y: close_r2(a, b, X, y, 0.05)),
        ("Autoencoder", lambda d: neuroml.Autoencoder(3, max_epochs=30, random_state=0,
                                                      device=d), (counts, None), close_score(0.05)),
        ("VAE", lambda d: neuroml.VAE(3, likelihood="poisson", max_epochs=30, random_state=0,
                                      device=d), (counts, None), close_score(0.05)),
    ]


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
@pytest.mark.parametrize("case", _gpu_cases() if HAS_CUDA else [], ids=lambda c: c[0])
def test_gpu_results_match_cpu(case):
    """The same data and random_state give the CPU's results on the GPU (tolerances in
    :func:`_gpu_cases`)."""
    _, make, (X, y), compare = case
    fit = (X,) if y is None else (X, y)
    cpu, gpu = make("cpu").fit(*fit), make("cuda").fit(*fit)
    assert gpu.device_.type == "cuda"
    assert compare(cpu, gpu, X, y)


@pytest.mark.cuda
@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
def test_contrastive_embedding_on_gpu_is_consistent_with_cpu():
    """One random_state draws the same pairs on both devices (a CPU generator): the GPU's
    embedding is as consistent with the CPU's as two CPU seeds are with each other."""
    from neuroml.representation import consistency_score

    rng = np.random.default_rng(0)
    phase = np.linspace(0, 2 * np.pi, 40)
    latent = np.stack([np.cos(phase), np.sin(phase)], -1)  # a ring over time in each trial
    rates = np.exp(1.0 + latent @ rng.normal(scale=0.8, size=(2, 30)))
    X = rng.poisson(np.broadcast_to(rates, (60, 40, 30))).astype(np.float32)
    embs = [neuroml.ContrastiveEmbedding(3, max_epochs=30, random_state=0, device=d)
            .fit(X).transform(X) for d in ("cpu", "cuda")]
    assert consistency_score(embs) >= 0.9


@pytest.mark.parametrize("device", DEVICES)
def test_traversal_and_representation_figures_from_any_device(device):
    """latent_traversal and the representation figures take a model fitted on any device."""
    from neuroml.plotting import plot_elbo_terms, plot_latents, plot_traversal
    from neuroml.representation import latent_traversal

    rng = np.random.default_rng(0)
    X = rng.poisson(3.0, size=(200, 8)).astype(np.float64)
    vae = neuroml.VAE(2, likelihood="poisson", max_epochs=3, hidden_layer_sizes=(8,),
                      random_state=0, device=device).fit(X)
    tr = latent_traversal(vae, values=np.linspace(-2, 2, 5))
    assert isinstance(tr, xr.DataArray) and tr.shape == (2, 5, 8)
    assert np.isfinite(tr.values).all()
    assert len(plot_traversal(tr)) == 2
    assert len(plot_elbo_terms(vae.history_)) == 2
    Zt = vae.transform(torch.as_tensor(X, device=vae.device_))  # a tensor on the device
    assert plot_latents(Zt).collections
