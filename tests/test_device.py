"""Device resolution, the output-type round trip and seeding (neuroml.device)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import xarray as xr

from neuroml.device import (
    InputInfo,
    available_devices,
    inspect_input,
    resolve_device,
    seed_from,
    to_numpy,
    to_tensor,
    torch_seed,
)
from neuroml.errors import DeviceError, NeuroMLError, ParameterError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


# ---------------------------------------------------------------------- resolve_device
def test_auto_is_cuda_when_present_else_cpu():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(" AUTO ").type == expected


@pytest.mark.parametrize("value", ["cpu", torch.device("cpu"), "CPU"])
def test_cpu_forms(value):
    assert resolve_device(value) == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("value", ["cuda", "cuda:0", torch.device("cuda", 1)])
def test_cuda_without_gpu_is_a_device_error_listing_devices(value):
    with pytest.raises(DeviceError, match=r"available devices: \['cpu'") as info:
        resolve_device(value)
    assert isinstance(info.value, NeuroMLError) and isinstance(info.value, RuntimeError)
    assert "device='auto'" in str(info.value) or "does not exist" in str(info.value)


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "", 3, None, 1.5, ["cpu"]])
def test_bad_values_are_parameter_errors(value):
    with pytest.raises(ParameterError, match=r"The 'device' parameter must be 'auto', 'cpu'"):
        resolve_device(value)


def test_available_devices_lists_cpu_first():
    devices = available_devices()
    assert devices[0] == "cpu"
    assert len([d for d in devices if d.startswith("cuda")]) == torch.cuda.device_count()


@pytest.mark.cuda
@requires_cuda
def test_cuda_index_out_of_range():
    with pytest.raises(DeviceError, match="does not exist"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


# ---------------------------------------------------------------------- round trip
def test_numpy_round_trip():
    X = np.arange(12.0).reshape(4, 3)
    info = inspect_input(X)
    assert info.kind == "numpy"
    out = info.wrap(torch.as_tensor(X[:, :2]), "component")
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, X[:, :2])


def test_dataarray_round_trip_keeps_sample_coords_including_non_index():
    X = xr.DataArray(
        np.random.default_rng(0).normal(size=(5, 3)), dims=("time", "unit"),
        coords={"time": np.linspace(0, 0.4, 5), "unit": [10, 11, 12],
                "trial": ("time", [0, 0, 1, 1, 1]),           # non-index coordinate on time
                "depth": ("unit", [100.0, 200.0, 300.0]),     # feature coordinate: dropped
                "session": "m1-2024"},                        # scalar coordinate: kept
        attrs={"units": "Hz"},
    )
    info = inspect_input(X)
    assert info.kind == "xarray" and info.dims == ("time", "unit")
    out = info.wrap(np.ones((5, 2)), "component", feature_coords=["pc1", "pc2"])
    assert out.dims == ("time", "component")
    np.testing.assert_array_equal(out["time"], X["time"])
    np.testing.assert_array_equal(out["trial"], [0, 0, 1, 1, 1])
    assert out["trial"].dims == ("time",)
    assert out["session"].item() == "m1-2024"
    assert "depth" not in out.coords and "unit" not in out.coords
    np.testing.assert_array_equal(out["component"], ["pc1", "pc2"])
    # predict-style output: sample dimension only
    labels = info.wrap(np.array([1, 0, 1, 1, 0]), None, name="choice")
    assert labels.dims == ("time",) and labels.name == "choice" and "trial" in labels.coords


def test_three_d_dataarray_round_trip():
    X = xr.DataArray(
        np.zeros((4, 6, 3)), dims=("trial", "time", "unit"),
        coords={"trial": [5, 6, 7, 8], "time": np.arange(6) * 0.05,
                "condition": ("trial", ["a", "b", "a", "b"])},
    )
    info = inspect_input(X)
    latent = info.wrap(torch.zeros(4, 6, 2), "latent")
    assert latent.dims == ("trial", "time", "latent")
    np.testing.assert_array_equal(latent["condition"], ["a", "b", "a", "b"])
    np.testing.assert_array_equal(latent["time"], X["time"])
    per_trial = info.wrap(np.zeros((4, 2)), "class", feature_coords=["left", "right"],
                          sample_dims=1)
    assert per_trial.dims == ("trial", "class")
    assert "time" not in per_trial.coords and "condition" in per_trial.coords
    unnamed = info.wrap(np.zeros((4, 6, 2, 2)), "latent")
    assert unnamed.dims == ("trial", "time", "latent", "dim_0")


def test_tensor_round_trip_goes_to_estimator_device():
    X = torch.arange(6.0).reshape(3, 2)
    info = inspect_input(X)
    assert info.kind == "torch" and info.device == torch.device("cpu")
    out = info.wrap(np.array([1.0, 2.0, 3.0]), None, estimator_device=torch.device("cpu"))
    assert isinstance(out, torch.Tensor) and out.device.type == "cpu"
    t = torch.ones(3)
    assert info.wrap(t, None) is t  # no copy when nothing moves


def test_to_tensor_shares_memory_and_copies_read_only():
    a = np.arange(6.0).reshape(2, 3)
    t = to_tensor(a, torch.device("cpu"))
    assert t.data_ptr() == a.ctypes.data  # zero copy on the CPU
    ro = a.copy()
    ro.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about non-writable arrays: copied instead
        t_ro = to_tensor(ro, torch.device("cpu"))
    assert t_ro.data_ptr() != ro.ctypes.data
    f = np.asfortranarray(a)
    np.testing.assert_array_equal(to_tensor(f, torch.device("cpu")).numpy(), a)
    assert to_tensor(a, torch.device("cpu"), torch.float32).dtype == torch.float32
    np.testing.assert_array_equal(to_numpy(xr.DataArray(a)), a)


# ---------------------------------------------------------------------- seeding
def test_seed_from():
    assert seed_from(7) == 7 and seed_from(np.int64(7)) == 7
    assert seed_from(-1) == 2**63 - 1
    assert seed_from(np.random.RandomState(0)) == seed_from(np.random.RandomState(0))
    assert seed_from(np.random.default_rng(1)) == seed_from(np.random.default_rng(1))
    fresh = {seed_from(None) for _ in range(5)}
    assert len(fresh) > 1 and all(0 <= s < 2**31 for s in fresh)
    for bad in ("0", 1.5, True):
        with pytest.raises(ParameterError, match="'random_state' parameter must be"):
            seed_from(bad)


def test_torch_seed_is_reproducible_and_leaves_global_rng_untouched():
    torch.manual_seed(2024)
    before = torch.get_rng_state()
    with torch_seed(5, torch.device("cpu")):
        a = torch.rand(4)
    assert torch.equal(torch.get_rng_state(), before)
    with torch_seed(5):
        b = torch.rand(4)
    assert torch.equal(a, b)
    expected_next = torch.rand(3)
    torch.set_rng_state(before)
    with torch_seed(6):
        torch.rand(100)
    assert torch.equal(torch.rand(3), expected_next)  # as if the block never ran


@pytest.mark.cuda
@requires_cuda
def test_torch_seed_on_cuda_restores_cuda_rng():
    dev = torch.device("cuda")
    before = torch.cuda.get_rng_state()
    with torch_seed(3, dev):
        a = torch.rand(4, device=dev)
    with torch_seed(3, dev):
        b = torch.rand(4, device=dev)
    assert torch.equal(a, b)
    assert torch.equal(torch.cuda.get_rng_state(), before)


def test_inputinfo_defaults():
    info = InputInfo("numpy")
    assert info.dims == () and info.coords == {} and info.device is None


def test_full_float32_turns_tf32_off_and_restores_the_callers_settings():
    from neuroml.device import full_float32

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        with pytest.raises(RuntimeError), full_float32():
            assert not torch.backends.cuda.matmul.allow_tf32
            assert not torch.backends.cudnn.allow_tf32
            raise RuntimeError("restored even on error")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_training_runs_without_tf32():
    from neuroml.training import Trainer

    seen = []

    def loss_fn(module, x):
        seen.append((torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32))
        return module(x).square().mean()

    Trainer(torch.nn.Linear(3, 1), loss_fn, max_epochs=2, validation_fraction=0.0).fit(
        torch.randn(20, 3))
    assert seen and not any(a or b for a, b in seen)
