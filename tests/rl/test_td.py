"""TDModel and RescorlaWagner estimators: analytic behaviour, coordinates, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from sklearn.base import clone

import neuroml
from neuroml.errors import ParameterError
from neuroml.rl.features import microstimulus
from neuroml.rl.learners import td_learning
from neuroml.rl.td import RescorlaWagner, TDModel

CUE, REWARD, N_TIME = 3, 9, 14


def _pavlovian(n_trials, *, omit_last=False, as_dataarray=False):
    stimuli = np.zeros((n_trials, N_TIME))
    stimuli[:, CUE] = 1
    rewards = np.zeros((n_trials, N_TIME))
    rewards[:, REWARD] = 1.0
    if omit_last:
        rewards[-1, REWARD] = 0.0
    if not as_dataarray:
        return stimuli, rewards
    coords = {"trial": np.arange(100, 100 + n_trials), "time": 0.1 * np.arange(N_TIME) - 0.3,
              "rewarded": ("trial", rewards[:, REWARD] > 0)}
    return (xr.DataArray(stimuli, dims=("trial", "time"), coords=coords),
            xr.DataArray(rewards, dims=("trial", "time"), coords=coords))


def test_csc_td0_dopamine_signature():
    # gamma = 1, cue then reward on every trial: after learning the RPE sits at the cue
    # (~1) and not at the reward (~0); omitting the reward then gives ~-1 at its bin.
    s, r = _pavlovian(301, omit_last=True)
    model = TDModel("csc", alpha=0.3, gamma=1.0, lam=0.0, device="cpu").fit(s, r)
    rpe = model.rpe_.values
    assert rpe[0, REWARD] == pytest.approx(1.0) and rpe[0, CUE] == pytest.approx(0.0)
    assert rpe[-2, CUE] == pytest.approx(1.0, abs=1e-6)
    assert rpe[-2, REWARD] == pytest.approx(0.0, abs=1e-6)
    assert rpe[-1, REWARD] == pytest.approx(-1.0, abs=1e-6)
    # the learned value is 1 from the cue to the bin before the reward
    expected = np.zeros(N_TIME)
    expected[CUE:REWARD] = 1.0
    np.testing.assert_allclose(model.value_.values[-1], expected, atol=1e-6)
    assert model.n_features_ == N_TIME and model.weights_.shape == (N_TIME,)
    np.testing.assert_allclose(model.weights_history_[-1], model.weights_)


def test_value_front_moves_back_one_bin_per_trial_with_alpha_one():
    s, r = _pavlovian(8)
    rpe = TDModel(alpha=1.0, gamma=1.0, lam=0.0, device="cpu").fit(s, r).rpe_.values
    fronts = [int(np.flatnonzero(np.isclose(row, 1.0))[0]) for row in rpe]
    assert fronts == [max(REWARD - n, CUE) for n in range(8)]
    assert np.abs(rpe).sum(axis=1) == pytest.approx(np.ones(8))  # nothing else


def test_discounting_gives_a_geometric_value_ramp():
    # TD(0) converges to V(t) = gamma^(reward - t - 1) between cue and reward (CSC).
    s, r = _pavlovian(200)
    gamma = 0.9
    model = TDModel(alpha=0.5, gamma=gamma, device="cpu").fit(s, r)
    t = np.arange(CUE, REWARD)
    np.testing.assert_allclose(model.value_.values[-1, CUE:REWARD], gamma ** (REWARD - t - 1),
                               atol=1e-6)
    assert model.rpe_.values[-1, CUE] == pytest.approx(gamma ** (REWARD - CUE), abs=1e-6)


@pytest.mark.parametrize("features, kwargs", [
    ("presence", {"duration": 6}), ("microstimulus", {"n_microstimuli": 4, "width": 0.1}),
])
def test_estimator_equals_the_learner_on_its_features(features, kwargs):
    s, r = _pavlovian(20)
    s3 = np.stack([s, np.roll(s, 2, axis=1)], axis=-1)  # two stimuli
    model = TDModel(features, alpha=0.2, gamma=0.95, lam=0.6, device="cpu", **kwargs).fit(s3, r)
    if features == "microstimulus":
        x = microstimulus(s3, 4, 0.985, 0.1)
    else:
        x = torch.as_tensor(np.concatenate([
            ((np.cumsum(s3[..., k], axis=1) > 0)
             & (np.arange(N_TIME) < np.argmax(s3[..., k], axis=1)[:, None] + 6))[..., None]
            for k in range(2)], axis=-1), dtype=torch.float64)
    ref = td_learning(x, r, 0.2, 0.95, 0.6)
    np.testing.assert_allclose(model.rpe_.values, ref.rpe.numpy(), rtol=1e-12, atol=1e-14)
    assert model.n_features_ == x.shape[-1]


def test_dataarray_input_keeps_coordinates():
    s, r = _pavlovian(30, omit_last=True, as_dataarray=True)
    s = s.transpose("time", "trial")  # order does not matter when dims are named
    model = TDModel(alpha=0.3, gamma=1.0, device="cpu").fit(s, r)
    for out in (model.value_, model.rpe_):
        assert out.dims == ("trial", "time")
        np.testing.assert_array_equal(out.trial, np.arange(100, 130))
        np.testing.assert_allclose(out.time, 0.1 * np.arange(N_TIME) - 0.3)
        np.testing.assert_array_equal(out.rewarded, r.rewarded)
    assert float(model.rpe_.sel(trial=129).isel(time=REWARD)) < -0.5
    # the RPE at reward time, grouped by the trial coordinate
    by = model.rpe_.isel(time=REWARD).groupby("rewarded").mean()
    assert by.sel(rewarded=False) < 0 < by.sel(rewarded=True)
    plain = TDModel(alpha=0.3, gamma=1.0, device="cpu").fit(*_pavlovian(30, omit_last=True))
    np.testing.assert_allclose(model.rpe_.values, plain.rpe_.values)
    np.testing.assert_array_equal(plain.rpe_.trial, np.arange(30))


def test_stimuli_with_a_stimulus_dimension_and_tensor_input():
    s, r = _pavlovian(10)
    s3 = xr.DataArray(s[..., None], dims=("trial", "time", "stimulus"))
    a = TDModel(device="cpu").fit(s3, r)
    b = TDModel(device="cpu").fit(torch.as_tensor(s), torch.as_tensor(r))
    np.testing.assert_allclose(a.rpe_.values, b.rpe_.values)
    assert isinstance(b.weights_, np.ndarray) and isinstance(b.value_, xr.DataArray)


def test_clone_and_save_load(tmp_path):
    s, r = _pavlovian(10)
    model = TDModel("microstimulus", alpha=0.05, device="cpu").fit(s, r)
    assert clone(model).get_params() == model.get_params()
    loaded = neuroml.load(model.save(tmp_path / "td.pt"))
    assert loaded.rpe_.identical(model.rpe_)
    np.testing.assert_array_equal(loaded.weights_, model.weights_)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu():
    s, r = _pavlovian(40)
    cpu = TDModel("microstimulus", lam=0.9, device="cpu").fit(s, r)
    gpu = TDModel("microstimulus", lam=0.9, device="cuda").fit(s, r)
    assert gpu.device_.type == "cuda"
    np.testing.assert_allclose(gpu.rpe_.values, cpu.rpe_.values, rtol=1e-9, atol=1e-12)


def _grid_error_cases():
    s, r = _pavlovian(5)
    sd, rd = _pavlovian(5, as_dataarray=True)
    shifted = rd.assign_coords(time=rd.time + 0.05)
    nan = r.copy()
    nan[2, 4] = np.nan
    return [
        (TDModel(), (s, r[:, :-1]), r"same \(trial, time\) grid: stimuli has shape \(5, 14\)"),
        (TDModel(), (s, r[:4]), r"rewards has shape \(4, 14\)"),
        (TDModel(), (sd, shifted), "'time' coordinates differ"),
        (TDModel(), (s, nan), "'rewards'.*NaN.*trial index 2"),
        (TDModel(), (s[..., None, None], r), "stimuli.*got shape"),
        (TDModel(), (s, r[..., None]), r"'rewards' of shape \(trial, time\)"),
        (TDModel(), (sd.rename(trial="sample"), r), "dims 'trial' and 'time'"),
        (TDModel("tapped"), (s, r), "'features' parameter of TDModel"),
        (TDModel(gamma=1.5), (s, r), "'gamma' parameter"),
        (TDModel(lam=-0.1), (s, r), "'lam' parameter"),
        (TDModel("microstimulus", trace_decay=1.0), (s, r), "'trace_decay' parameter"),
        (RescorlaWagner(), (np.ones((5, 2)), np.ones(4)), "cues has 5 trials"),
        (RescorlaWagner(), (np.ones((5, 2)), [1, 1, np.nan, 1, 1]), "'rewards'.*NaN"),
        (RescorlaWagner(), (np.ones((5, 2, 2)), np.ones(5)), "'cues' of shape"),
        (RescorlaWagner(v0=[0.0, 1.0, 2.0]), (np.ones((5, 2)), np.ones(5)), "'v0' parameter"),
        (RescorlaWagner(alpha=-1), (np.ones((5, 2)), np.ones(5)), "'alpha' parameter"),
    ]


@pytest.mark.parametrize("model, args, match", _grid_error_cases())
def test_bad_input(model, args, match):
    with pytest.raises(ParameterError, match=match):
        model.set_params(device="cpu").fit(*args)


# ---------------------------------------------------------------------- Rescorla-Wagner
def test_rescorla_wagner_estimator_closed_form_and_coordinates():
    n, alpha, r = 25, 0.2, 3.0
    cues = xr.DataArray(np.ones((n, 1)), dims=("trial", "cue"),
                        coords={"trial": np.arange(n) + 1, "block": ("trial", np.arange(n) // 5),
                                "cue": ["tone"]})
    model = RescorlaWagner(alpha=alpha, device="cpu").fit(cues, np.full(n, r))
    expected = r * (1 - (1 - alpha) ** np.arange(n))
    np.testing.assert_allclose(model.values_.values, expected, rtol=1e-12)
    np.testing.assert_allclose(model.rpe_.values, r - expected, rtol=1e-12)
    np.testing.assert_array_equal(model.values_.trial, np.arange(n) + 1)
    np.testing.assert_array_equal(model.rpe_.block, np.arange(n) // 5)
    assert model.weights_.shape == (1,) and model.weights_history_.shape == (n, 1)
    assert model.n_cues_ == 1


def test_rescorla_wagner_initial_values_and_one_dimensional_cues():
    model = RescorlaWagner(alpha=0.5, v0=1.0, device="cpu").fit(np.ones(3), np.zeros(3))
    np.testing.assert_allclose(model.values_.values, [1.0, 0.5, 0.25])
    two = RescorlaWagner(alpha=0.5, v0=[1.0, 0.0], device="cpu").fit(
        np.array([[1, 0], [0, 1]]), np.zeros(2))
    np.testing.assert_allclose(two.values_.values, [1.0, 0.0])
