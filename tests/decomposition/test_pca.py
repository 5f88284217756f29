"""neuroml.PCA against scikit-learn's PCA, on planted low-rank data and a real recording."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
import xarray as xr
from sklearn.decomposition import PCA as SkPCA

import neuroml
from neuroml import PCA, ParameterError
from neuroml.decomposition import pca as pca_module

REAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "real"
RUTISHAUSER = REAL / "human_mtl_units_trials_rutishauser.nwb"

SOLVERS = ["covariance_eigh", "full", "randomized"]


def low_rank(n_samples=600, n_features=40, rank=5, noise=0.05, seed=0, offset=3.0):
    """Planted rank-``rank`` signal with a decaying spectrum, plus isotropic noise."""
    rng = np.random.default_rng(seed)
    latents = rng.standard_normal((n_samples, rank)) * np.linspace(4.0, 1.0, rank)
    loadings = np.linalg.qr(rng.standard_normal((n_features, rank)))[0].T
    return latents @ loadings + noise * rng.standard_normal((n_samples, n_features)) + offset


def largest_angle(A, B):
    """Largest principal angle (radians) between the row spaces of A and B."""
    return float(np.max(scipy.linalg.subspace_angles(np.asarray(A).T, np.asarray(B).T)))


@pytest.fixture(scope="module")
def X():
    return low_rank()


@pytest.mark.parametrize("solver", SOLVERS)
def test_matches_sklearn(X, solver):
    ours = PCA(5, svd_solver=solver, device="cpu", random_state=0).fit(X)
    ref = SkPCA(5, svd_solver=solver, random_state=0).fit(X)
    assert ours._fit_svd_solver == solver
    assert ours.components_.dtype == np.float64
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)
    np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_,
                               rtol=1e-4)
    np.testing.assert_allclose(ours.singular_values_, ref.singular_values_, rtol=1e-4)
    np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=1e-10)
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-4)
    assert largest_angle(ours.components_, ref.components_) < 1e-3
    # Same sign convention (svd_flip, u_based_decision=False): the components agree.
    np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-4)
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-4)
    assert (ours.n_components_, ours.n_samples_, ours.n_features_in_) == (5, 600, 40)


@pytest.mark.parametrize("solver", ["covariance_eigh", "full"])
def test_all_components_and_noise_variance(X, solver):
    """Full spectrum; noise_variance_ is the mean of the dropped variances."""
    full = PCA(svd_solver=solver, device="cpu").fit(X)
    ref = SkPCA(svd_solver="full").fit(X)
    assert full.n_components_ == 40
    np.testing.assert_allclose(full.explained_variance_, ref.explained_variance_,
                               rtol=1e-4, atol=1e-10)
    np.testing.assert_allclose(full.explained_variance_ratio_.sum(), 1.0, rtol=1e-12)
    assert full.noise_variance_ == 0.0
    part = PCA(5, svd_solver=solver, device="cpu").fit(X)
    np.testing.assert_allclose(part.noise_variance_, full.explained_variance_[5:].mean(), rtol=1e-8)
    # The planted noise has variance 0.05**2 per feature.
    assert part.noise_variance_ == pytest.approx(0.05**2, rel=0.1)


def test_auto_solver_rule_and_parameter_unchanged():
    cases = [((600, 40), 5, "covariance_eigh"), ((100, 50), 5, "full"),
             ((510, 60), 5, "randomized"), ((510, 60), 0.9, "full"),
             ((510, 60), None, "full")]
    for shape, k, expected in cases:
        X = low_rank(*shape, rank=3)
        est = PCA(k, device="cpu", random_state=0).fit(X)
        ref = SkPCA(k, random_state=0).fit(X)
        assert est.svd_solver == "auto"
        assert est._fit_svd_solver == ref._fit_svd_solver == expected
        assert est.n_components_ == ref.n_components_


def test_whiten(X):
    ours = PCA(4, whiten=True, device="cpu").fit(X)
    ref = SkPCA(4, whiten=True).fit(X)
    Z = ours.transform(X)
    np.testing.assert_allclose(Z, ref.transform(X), atol=1e-6)
    np.testing.assert_allclose(Z.var(axis=0, ddof=1), np.ones(4), rtol=1e-8)
    np.testing.assert_allclose(ours.inverse_transform(Z), ref.inverse_transform(Z), atol=1e-8)
    np.testing.assert_allclose(ours.fit_transform(X), Z, atol=1e-8)


@pytest.mark.parametrize("whiten", [False, True])
def test_inverse_transform_round_trip(X, whiten):
    pca = PCA(whiten=whiten, svd_solver="full", device="cpu").fit(X)
    np.testing.assert_allclose(pca.inverse_transform(pca.transform(X)), X, atol=1e-9)
    pca5 = PCA(5, whiten=whiten, device="cpu").fit(X)
    ref = SkPCA(5, whiten=whiten).fit(X)
    np.testing.assert_allclose(pca5.inverse_transform(pca5.transform(X)),
                               ref.inverse_transform(ref.transform(X)), atol=1e-8)
    # Rank-5 reconstruction error is the planted noise.
    resid = X - pca5.inverse_transform(pca5.transform(X))
    assert resid.std() == pytest.approx(0.05, rel=0.1)


@pytest.mark.parametrize("fraction", [0.5, 0.8, 0.95, 0.999])
@pytest.mark.parametrize("solver", ["covariance_eigh", "full"])
def test_float_n_components(X, fraction, solver):
    ours = PCA(fraction, svd_solver=solver, device="cpu").fit(X)
    ref = SkPCA(fraction, svd_solver="full").fit(X)
    assert ours.n_components_ == ref.n_components_
    assert ours.explained_variance_ratio_.sum() > fraction
    assert ours.explained_variance_ratio_[:-1].sum() <= fraction
    np.testing.assert_allclose(ours.noise_variance_, ref.noise_variance_, rtol=1e-4)


def test_score_matches_sklearn(X):
    ours = PCA(5, device="cpu").fit(X)
    ref = SkPCA(5).fit(X)
    X_new = low_rank(seed=1)
    np.testing.assert_allclose(ours.score_samples(X_new), ref.score_samples(X_new), rtol=1e-6)
    assert ours.score(X_new) == pytest.approx(ref.score(X_new), rel=1e-6)
    np.testing.assert_allclose(ours.get_covariance(), ref.get_covariance(), atol=1e-8)
    np.testing.assert_allclose(ours.get_precision(), ref.get_precision(), rtol=1e-5, atol=1e-5)


def test_get_feature_names_out(X):
    pca = PCA(3, device="cpu").fit(X)
    assert list(pca.get_feature_names_out()) == ["pca0", "pca1", "pca2"]


def test_float32_stays_float32_and_agrees(X):
    X32 = X.astype(np.float32)
    for solver in SOLVERS:
        pca = PCA(5, svd_solver=solver, device="cpu", random_state=0).fit(X32)
        assert pca.components_.dtype == np.float32
        assert pca.transform(X32).dtype == np.float32
        ref = SkPCA(5, svd_solver="full").fit(X)
        np.testing.assert_allclose(pca.explained_variance_, ref.explained_variance_, rtol=1e-4)
        assert largest_angle(pca.components_, ref.components_) < 1e-3


def test_covariance_eigh_float32_large_offset_is_accurate():
    """Centring chunk by chunk keeps float32 accurate when the mean dwarfs the spread."""
    X = low_rank(5000, 30, offset=1000.0, seed=3)
    ours = PCA(5, svd_solver="covariance_eigh", device="cpu").fit(X.astype(np.float32))
    ref = SkPCA(5, svd_solver="full").fit(X)
    np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-3)
    assert largest_angle(ours.components_, ref.components_) < 1e-3


@pytest.mark.parametrize("threads", [1, 2])
def test_one_pass_covariance_with_drift_is_accurate(monkeypatch, threads):
    """The one-pass covariance shifts every chunk by the FIRST chunk's mean; rows whose
    mean drifts away from it (a slow drift over a recording) and many chunks shared
    between threads still give the variances and means of an exact two-pass float64
    computation: to 1e-10 on float64 data, and on float32 data to what float32 products
    allow (against a float64 reference on the same float32 values: rounding of the
    order of eps32 times the largest variance, 6e-8 * 1642 / 2.8 = 3.5e-5 relative for
    the fifth component)."""
    X = low_rank(6000, 20, offset=5.0, seed=4)
    X += np.linspace(0.0, 30.0, len(X))[:, None] * np.linspace(0.5, 1.5, 20)  # drift
    X32 = X.astype(np.float32)
    monkeypatch.setattr(pca_module, "_SCATTER_CHUNK_ELEMENTS", 20 * 250)  # 24 chunks
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        ours64 = PCA(6, svd_solver="covariance_eigh", device="cpu").fit(X)
        ours32 = PCA(6, svd_solver="covariance_eigh", device="cpu").fit(X32)
    finally:
        torch.set_num_threads(before)
    assert torch.get_num_threads() == before
    for ours, data, rtol in ((ours64, X, 1e-10), (ours32, X32.astype(np.float64), 1e-4)):
        ref = SkPCA(6, svd_solver="full").fit(data)
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=rtol)
        np.testing.assert_allclose(ours.mean_, ref.mean_, rtol=rtol)
        assert largest_angle(ours.components_, ref.components_) < 1e-3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_one_pass_covariance_torch_path_equals_numpy_path(monkeypatch, dtype):
    """The torch accumulation (the GPU's path) equals the NumPy/BLAS one (the CPU's)."""
    X = low_rank(3000, 25, offset=40.0, seed=5).astype(dtype)
    monkeypatch.setattr(pca_module, "_SCATTER_CHUNK_ELEMENTS", 25 * 300)
    t = torch.as_tensor(X)
    m_np, s_np = pca_module._mean_and_scatter(t, numpy_blas=True)
    m_th, s_th = pca_module._mean_and_scatter(t, numpy_blas=False)
    Xc = X.astype(np.float64) - X.astype(np.float64).mean(0)
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    for mean, scatter in ((m_np, s_np), (m_th, s_th)):
        assert mean.dtype == scatter.dtype == torch.float64
        np.testing.assert_allclose(mean.numpy(), X.astype(np.float64).mean(0), rtol=rtol)
        np.testing.assert_allclose(scatter.numpy(), Xc.T @ Xc, rtol=rtol,
                                   atol=rtol * np.abs(Xc.T @ Xc).max())


@pytest.mark.parametrize("solver", ["covariance_eigh", "randomized"])
def test_chunked_paths_agree(X, solver, monkeypatch):
    """Many small chunks give the same fit as one chunk."""
    one = PCA(5, svd_solver=solver, device="cpu", random_state=0).fit(X)
    monkeypatch.setattr(pca_module, "_CHUNK_ELEMENTS", 40 * 7)  # 7 rows per chunk
    monkeypatch.setattr(pca_module, "_SCATTER_CHUNK_ELEMENTS", 40 * 7)
    many = PCA(5, svd_solver=solver, device="cpu", random_state=0).fit(X)
    np.testing.assert_allclose(many.explained_variance_, one.explained_variance_, rtol=1e-9)
    np.testing.assert_allclose(many.components_, one.components_, atol=1e-8)


def test_randomized_reproducible_and_global_rng_untouched(X):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    a = PCA(3, svd_solver="randomized", n_power_iter=0, device="cpu", random_state=7).fit(X)
    after = torch.rand(3)
    b = PCA(3, svd_solver="randomized", n_power_iter=0, device="cpu", random_state=7).fit(X)
    assert torch.equal(expected, after)
    np.testing.assert_array_equal(a.components_, b.components_)


def test_dataarray_2d_in_out(X):
    time = np.arange(X.shape[0]) * 0.01
    da = xr.DataArray(X, dims=("time", "unit"),
                      coords={"time": time, "unit": np.arange(100, 140)},
                      attrs={"bin_size": 0.01, "units": "spikes"})
    pca = PCA(3, device="cpu").fit(da)
    Z = pca.transform(da)
    assert isinstance(Z, xr.DataArray)
    assert Z.dims == ("time", "component")
    np.testing.assert_array_equal(Z["time"].values, time)
    np.testing.assert_array_equal(Z["component"].values, [0, 1, 2])
    assert Z.attrs == {"bin_size": 0.01}  # sample attrs kept, feature attrs dropped
    np.testing.assert_allclose(Z.values, SkPCA(3).fit_transform(X), atol=1e-6)
    back = pca.inverse_transform(Z)
    assert back.dims == ("time", "unit")
    np.testing.assert_array_equal(back["unit"].values, np.arange(100, 140))
    Zf = PCA(3, device="cpu").fit_transform(da)
    assert isinstance(Zf, xr.DataArray) and Zf.dims == ("time", "component")
    ll = pca.score_samples(da)
    assert ll.dims == ("time",)


def test_dataarray_3d_trials_flattened_and_restored(X):
    """(trial, time, unit) epochs: fit on the flattened samples, outputs keep trial coords."""
    cube = X.reshape(20, 30, 40)
    condition = np.repeat(["left", "right"], 10)
    da = xr.DataArray(cube, dims=("trial", "time", "unit"),
                      coords={"trial": np.arange(20), "time": np.linspace(-0.5, 1, 30),
                              "unit": np.arange(40), "condition": ("trial", condition)},
                      attrs={"bin_size": 0.05, "align_to": "go"})
    pca = PCA(3, device="cpu").fit(da)
    ref = SkPCA(3).fit(X)
    assert pca.n_samples_ == 600
    np.testing.assert_allclose(pca.explained_variance_, ref.explained_variance_, rtol=1e-8)
    Z = pca.transform(da)
    assert Z.dims == ("trial", "time", "component")
    assert Z.shape == (20, 30, 3)
    np.testing.assert_array_equal(Z["condition"].values, condition)
    np.testing.assert_allclose(Z["time"].values, da["time"].values)
    assert Z.attrs["bin_size"] == 0.05
    np.testing.assert_allclose(Z.values.reshape(600, 3), ref.transform(X), atol=1e-8)
    assert Z.groupby("condition").mean("trial").sizes == {"condition": 2, "time": 30,
                                                          "component": 3}
    back = pca.inverse_transform(Z)
    assert back.dims == ("trial", "time", "unit")
    # 3-D ndarray and tensor inputs work the same way.
    np.testing.assert_allclose(pca.transform(cube), Z.values, atol=1e-12)
    Zt = pca.transform(torch.from_numpy(cube))
    assert isinstance(Zt, torch.Tensor) and tuple(Zt.shape) == (20, 30, 3)
    assert pca.score_samples(da).dims == ("trial", "time")


def test_tensor_in_tensor_out(X):
    Xt = torch.from_numpy(X.astype(np.float32))
    pca = PCA(4, device="cpu").fit(Xt)
    Z = pca.transform(Xt)
    assert isinstance(Z, torch.Tensor) and Z.dtype == torch.float32
    assert Z.device == pca.device_
    ref = SkPCA(4).fit(X)
    np.testing.assert_allclose(Z.numpy(), ref.transform(X), atol=1e-3)
    back = pca.inverse_transform(Z)
    assert isinstance(back, torch.Tensor) and back.shape == Xt.shape
    np.testing.assert_allclose(pca.fit_transform(Xt).numpy(), Z.numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "params, X_shape, match",
    [
        ({"n_components": 41}, (600, 40), r"'n_components'.*<= min\(n_samples, n_features\)=40"),
        ({"n_components": 11}, (10, 40), r"'n_components'.*=10 .*Got 11"),
        ({"n_components": 1.5}, (600, 40), r"The 'n_components' parameter of PCA must be"),
        ({"n_components": 0}, (600, 40), r"The 'n_components' parameter of PCA must be"),
        ({"n_components": "mle"}, (600, 40), r"'n_components'.*'mle'.*not implemented"),
        ({"svd_solver": "arpack"}, (600, 40), r"The 'svd_solver' parameter of PCA must be a str "
                                              r"among .*Got 'arpack' instead"),
        ({"svd_solver": "randomized", "n_components": 0.5}, (600, 40),
         r"randomized.*'n_components'"),
        ({"n_oversamples": 0}, (600, 40), r"'n_oversamples'"),
        ({"n_power_iter": -1}, (600, 40), r"'n_power_iter'"),
        ({"whiten": "yes"}, (600, 40), r"'whiten'"),
    ],
)
def test_parameter_errors(params, X_shape, match):
    X = np.random.default_rng(0).standard_normal(X_shape)
    with pytest.raises(ParameterError, match=match):
        PCA(device="cpu", **params).fit(X)


def test_input_errors(X):
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        PCA(2, device="cpu").fit(bad)
    with pytest.raises(ValueError, match="NaN"):
        PCA(2, device="cpu").fit(torch.from_numpy(bad))
    with pytest.raises(ParameterError, match=r"2-D .* or 3-D .*Got an input of shape \(2, 3, 4, 5\)"):
        PCA(2, device="cpu").fit(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="1 sample"):
        PCA(device="cpu").fit(X[:1])
    pca = PCA(2, device="cpu").fit(X)
    with pytest.raises(ValueError, match="40 features"):
        pca.transform(X[:, :10])
    with pytest.raises(ParameterError, match="n_components_=2"):
        pca.inverse_transform(np.zeros((3, 5)))
    with pytest.raises(neuroml.NotFittedError):
        PCA().transform(X)
    with pytest.raises(neuroml.DeviceError) if not torch.cuda.is_available() else warnings.catch_warnings():
        PCA(2, device="cuda").fit(X)


def test_save_load_and_pickle(X, tmp_path):
    time = np.arange(X.shape[0]) * 0.01
    da = xr.DataArray(X, dims=("time", "unit"), coords={"time": time, "unit": np.arange(40)})
    pca = PCA(5, whiten=True, device="cpu").fit(da)
    expected = pca.transform(X)
    loaded = neuroml.load(pca.save(tmp_path / "pca.pt"))
    assert isinstance(loaded, PCA)
    assert loaded.get_params() == pca.get_params()
    np.testing.assert_array_equal(loaded.transform(X), expected)
    assert loaded.n_components_ == 5 and loaded.noise_variance_ == pca.noise_variance_
    assert loaded.inverse_transform(loaded.transform(da)).dims == ("time", "unit")
    unpickled = pickle.loads(pickle.dumps(pca))
    np.testing.assert_array_equal(unpickled.transform(X), expected)
    np.testing.assert_array_equal(unpickled.components_, pca.components_)


@pytest.mark.skipif(not RUTISHAUSER.exists(), reason="real recording not present")
def test_real_recording_rutishauser_matches_sklearn():
    """35 human MTL units, binned spike counts: same spectrum and axes as scikit-learn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the file's OpticalSeries placeholder
        with neuroml.load_recording(RUTISHAUSER) as rec:
            counts = rec.bin(0.5)
            epochs = rec.with_trials(rec.intervals["encoding_table"]).epochs(
                "start_time", (0.0, 8.0), 0.5)
    X = counts.values.astype(np.float64)
    assert X.shape[1] == 35
    ref = SkPCA(10, svd_solver="full").fit(X)
    for solver in SOLVERS:
        # The spectrum of real counts is flat (ratios 4.2 .. 1.2): give the randomized
        # solver enough power iterations to converge to 1e-4.
        ours = PCA(10, svd_solver=solver, n_power_iter=20, device="cpu",
                   random_state=0).fit(counts)
        np.testing.assert_allclose(ours.explained_variance_, ref.explained_variance_, rtol=1e-4)
        np.testing.assert_allclose(ours.explained_variance_ratio_, ref.explained_variance_ratio_,
                                   rtol=1e-4)
        assert largest_angle(ours.components_, ref.components_) < 1e-3
    Z = PCA(3, device="cpu").fit_transform(epochs)
    assert Z.dims == ("trial", "time", "component") and Z.sizes["trial"] == 90
    assert "stimCategory" in Z.coords
    flat = epochs.values.reshape(-1, 35).astype(np.float64)
    np.testing.assert_allclose(np.abs(Z.values.reshape(-1, 3)),
                               np.abs(SkPCA(3).fit_transform(flat)), atol=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("solver", SOLVERS)
def test_cuda_matches_cpu(X, solver):
    cpu = PCA(5, svd_solver=solver, device="cpu", random_state=0).fit(X)
    gpu = PCA(5, svd_solver=solver, device="cuda", random_state=0).fit(X)
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.explained_variance_, cpu.explained_variance_, rtol=1e-6)
    assert largest_angle(gpu.components_, cpu.components_) < 1e-6
    Zt = gpu.transform(torch.from_numpy(X))
    assert Zt.device.type == "cuda"
    np.testing.assert_allclose(Zt.cpu().numpy(), cpu.transform(X), atol=1e-6)


def test_user_guide_examples_run(tmp_path, run_user_guide):
    """Every Python block of docs/user-guide/pca.md runs, in order (figures to tmp_path)."""
    namespace, n_blocks = run_user_guide("pca.md")
    assert n_blocks >= 3
    assert (tmp_path / "pca_trajectories.png").stat().st_size > 10_000
    assert namespace["latents"].dims == ("trial", "time", "component")
