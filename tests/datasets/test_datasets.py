"""Synthetic recordings: determinism, layout, and recovery of the planted ground truth.

The planted truth is checked with tools we did not write (scikit-learn regression,
PCA and logistic regression; numpy least squares and eigenvalues; scipy's normal CDF).
"""

from __future__ import annotations

import importlib.util
import json
import time
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.decomposition import PCA
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import neuroml
from neuroml.datasets import ideal_accuracy, make_decision, make_reaching
from neuroml.errors import ParameterError
from neuroml.io import Recording

# ----------------------------------------------------------------------------- helpers


def _truth_of(gt: dict) -> str:
    """Ground truth as JSON, without the seed (None when a Generator was passed)."""
    gt = dict(gt)
    gt["parameters"] = {k: v for k, v in gt["parameters"].items() if k != "random_state"}
    return json.dumps(gt)


def _truth(rec: Recording) -> str:
    return _truth_of(rec.meta["ground_truth"])


def _same(a: Recording, b: Recording) -> bool:
    sigs = set(a.signals) == set(b.signals) and all(
        a.signals[k].equals(b.signals[k]) for k in a.signals
    )
    return (
        a.spikes.equals(b.spikes)
        and a.spikes.units.equals(b.spikes.units)
        and a.trials.equals(b.trials)
        and sigs
        and _truth(a) == _truth(b)
        and a.meta["identifier"] == b.meta["identifier"]
    )


def _window_latents(rec: Recording) -> np.ndarray:
    """The latent samples of each trial's dynamics window, (trial, step, latent), by index."""
    gt = rec.meta["ground_truth"]
    dt = gt["parameters"]["dt"]
    lat = rec.signals["latents"]
    n = int(round((gt["latent_window"][1] - gt["latent_window"][0]) / dt))
    first = np.rint((rec.trials["movement_onset"].to_numpy() + gt["latent_window"][0]) / dt)
    idx = first.astype(np.int64)[:, None] + np.arange(n)
    return np.asarray(lat.values, dtype=np.float64)[idx]


def _cv_accuracy(x: np.ndarray, y: np.ndarray) -> float:
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return float(cross_val_score(model, x, y, cv=cv).mean())


# ----------------------------------------------------------------------------- reaching


@pytest.fixture(scope="module")
def reaching():
    return make_reaching(n_units=40, n_trials=160, random_state=1)


def test_reaching_is_deterministic_under_the_seed():
    a = make_reaching(n_units=12, n_trials=16, random_state=3)
    assert _same(a, make_reaching(n_units=12, n_trials=16, random_state=3))
    assert _same(a, make_reaching(n_units=12, n_trials=16,
                                  random_state=np.random.default_rng(3)))
    b = make_reaching(n_units=12, n_trials=16, random_state=4)
    assert not a.spikes.equals(b.spikes)
    assert a.meta["identifier"] != b.meta["identifier"]


def test_reaching_layout(reaching):
    rec, gt = reaching, reaching.meta["ground_truth"]
    assert neuroml.make_reaching is make_reaching
    assert len(rec.spikes) == 40 and rec.spikes.n_spikes > 0
    assert rec.spikes.units["baseline_rate"].tolist() == gt["baseline_rates"]
    tr = rec.trials
    assert list(tr.columns) == ["start_time", "stop_time", "condition", "direction",
                                "go_cue", "movement_onset"]
    assert len(tr) == 160
    assert tr["condition"].value_counts().sort_index().tolist() == [20] * 8
    np.testing.assert_allclose(tr["direction"], 2 * np.pi * tr["condition"] / 8)
    assert np.all(tr["start_time"] < tr["go_cue"])
    rt = tr["movement_onset"] - tr["go_cue"]
    assert rt.between(0.2 - 1e-9, 0.4 + 1e-9).all()
    np.testing.assert_allclose(tr["stop_time"] - tr["movement_onset"], 0.75, atol=1e-9)
    # trials laid end to end with a rest between them; all spikes inside the session
    assert np.all(tr["start_time"].to_numpy()[1:] - tr["stop_time"].to_numpy()[:-1] > 0.29)
    lat, vel = rec.signals["latents"], rec.signals["hand_velocity"]
    assert lat.dims == ("time", "channel") and lat.shape[1] == 4
    assert vel["channel"].values.tolist() == ["vx", "vy"]
    assert lat.shape[0] == vel.shape[0]
    t = lat["time"].values
    np.testing.assert_allclose(np.diff(t), 0.01, atol=1e-9)
    assert rec.spikes.times.min() >= 0 and rec.spikes.times.max() < t[-1] + 0.01
    json.dumps(gt)  # JSON-serialisable


def test_reaching_latents_rest_outside_the_windows_and_follow_A_without_noise():
    rec = make_reaching(n_units=10, n_trials=16, noise=0.0, random_state=2)
    gt = rec.meta["ground_truth"]
    A = np.asarray(gt["dynamics_matrix"])
    z = _window_latents(rec)
    # x[k+1] = A x[k] exactly (up to float32 storage), |x[0]| = 1, equal share per plane
    np.testing.assert_allclose(z[:, 1:], z[:, :-1] @ A.T, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(z[:, 0], axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(z[:, 0, :2], axis=1), np.sqrt(0.5), atol=1e-6)
    # initial condition is a linear function of (cos, sin) of the direction
    d = rec.trials["direction"].to_numpy()
    M = np.asarray(gt["initial_condition_matrix"])
    np.testing.assert_allclose(z[:, 0], np.column_stack([np.cos(d), np.sin(d)]) @ M.T,
                               atol=1e-6)
    lat = rec.signals["latents"].values
    inside = np.zeros(lat.shape[0], dtype=bool)
    first = np.rint((rec.trials["movement_onset"].to_numpy() - 0.25) / 0.01).astype(int)
    inside[first[:, None] + np.arange(100)] = True
    assert np.all(lat[~inside] == 0)
    assert np.all(np.abs(lat[inside]).sum(1) > 0)


def test_reaching_fitted_dynamics_have_the_planted_rotation_frequencies(reaching):
    gt = reaching.meta["ground_truth"]
    dt = gt["parameters"]["dt"]
    z = _window_latents(reaching)
    x0, x1 = z[:, :-1].reshape(-1, 4), z[:, 1:].reshape(-1, 4)
    A_fit = np.linalg.lstsq(x0, x1, rcond=None)[0].T
    A = np.asarray(gt["dynamics_matrix"])
    assert np.abs(A_fit - A).max() < 0.01
    eig = np.linalg.eigvals(A_fit)
    assert np.all(np.abs(eig.imag) > 0)  # two complex-conjugate pairs
    freqs = np.sort(np.abs(np.angle(eig))) / (2 * np.pi * dt)
    np.testing.assert_allclose(freqs, np.repeat(gt["frequencies"], 2), atol=0.05)
    np.testing.assert_allclose(np.abs(eig), np.exp(-dt / gt["decay_time"]), atol=0.005)
    planted = np.array([complex(*e) for e in gt["eigenvalues"]])
    np.testing.assert_allclose(np.sort_complex(planted), np.sort_complex(np.linalg.eigvals(A)))


def _log_psth(rec, bin_size, trials=None):
    w = tuple(rec.meta["ground_truth"]["latent_window"])
    counts = rec.epochs("movement_onset", w, bin_size, trials=trials)
    mean = counts.groupby("condition").mean("trial")  # (condition, time, unit)
    return np.log(mean.values / bin_size + 1.0)


def test_reaching_population_activity_is_low_dimensional_and_follows_the_latents(reaching):
    rec, gt = reaching, reaching.meta["ground_truth"]
    bs = 0.05
    w = tuple(gt["latent_window"])
    lat = rec.epochs("movement_onset", w, bs, source="latents")
    latm = lat.groupby("condition").mean("trial").values.reshape(-1, 4)
    y = _log_psth(rec, bs).reshape(-1, 40)
    # the trial-averaged log rates are a linear function of the latents
    r2 = LinearRegression().fit(latm, y).score(latm, y)
    assert r2 > 0.6, r2
    # the latents are decodable from held-out trials (fit on one half, test on the other)
    half = rec.trials.groupby("condition").cumcount().to_numpy() % 2 == 0
    ya = _log_psth(rec, bs, trials=half).reshape(-1, 40)
    yb = _log_psth(rec, bs, trials=~half).reshape(-1, 40)
    r2_dec = LinearRegression().fit(ya, latm).score(yb, latm)
    assert r2_dec > 0.8, r2_dec
    # n_latents dominant principal components, then a flat noise floor
    ev = PCA().fit(y).explained_variance_ratio_
    assert ev[3] > 4 * ev[4], ev[:6]
    assert ev[:4].sum() > 0.6, ev[:6]
    # jPCA-style: dynamics fitted in the top-4 PC space rotate at the planted frequencies
    pcs = PCA(4).fit_transform(y).reshape(8, -1, 4)
    a_fit = np.linalg.lstsq(pcs[:, :-1].reshape(-1, 4), pcs[:, 1:].reshape(-1, 4),
                            rcond=None)[0].T
    freqs = np.sort(np.abs(np.angle(np.linalg.eigvals(a_fit)))) / (2 * np.pi * bs)
    np.testing.assert_allclose(freqs, np.repeat(gt["frequencies"], 2), atol=0.1)


def test_reaching_cosine_tuning_and_rate_bounds(reaching):
    gt = reaching.meta["ground_truth"]
    C = np.asarray(gt["loading_matrix"])
    b = np.asarray(gt["baseline_rates"])
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), np.log(gt["max_rate"] / b))
    assert np.all((b > 5 * np.exp(-0.5) - 1e-9) & (b < 5 * np.exp(0.5) + 1e-9))
    # at movement onset the log rate is linear in (cos, sin) of the direction
    y = _log_psth(reaching, 0.1)[:, 2]  # bin [-0.05, 0.05) around movement onset
    d = 2 * np.pi * np.arange(8) / 8
    x = np.column_stack([np.cos(d), np.sin(d)])
    r2 = np.mean([LinearRegression().fit(x, y[:, i]).score(x, y[:, i])
                  for i in range(y.shape[1])])
    assert r2 > 0.7, r2


def test_reaching_hand_velocity_is_a_bell_shaped_reach_along_the_direction(reaching):
    rec, gt = reaching, reaching.meta["ground_truth"]
    vel = rec.signals["hand_velocity"].values.astype(np.float64)
    tr = rec.trials
    mo = np.rint(tr["movement_onset"].to_numpy() / 0.01).astype(int)
    n_move = int(round(gt["movement_duration"] / 0.01))
    seg = vel[mo[:, None] + np.arange(n_move)]                       # (trial, step, 2)
    d = tr["direction"].to_numpy()
    displacement = seg.sum(1) * 0.01
    np.testing.assert_allclose(displacement,
                               0.1 * np.column_stack([np.cos(d), np.sin(d)]), atol=1e-4)
    speed = np.linalg.norm(seg, axis=2)
    assert np.all(speed[:, 0] == 0)
    assert np.all(np.abs(np.argmax(speed, 1) - n_move / 2) <= 1)
    assert np.all(vel[mo - 1] == 0)  # at rest before movement onset
    assert np.isclose(np.abs(vel).sum(), np.abs(seg).sum(), rtol=1e-6)  # nothing elsewhere


def test_reaching_default_size_is_fast():
    t0 = time.perf_counter()
    rec = make_reaching(random_state=0)
    elapsed = time.perf_counter() - t0
    assert len(rec.spikes) == 100 and len(rec.trials) == 200
    assert rec.trials["condition"].value_counts().tolist() == [25] * 8
    assert elapsed < 3.0, elapsed  # about 0.2 s on one core


# ----------------------------------------------------------------------------- decision


def _decision_counts(rec):
    gt = rec.meta["ground_truth"]
    onset, stop = gt["coding_window"]
    post = rec.epochs("stim_on", (onset, stop), stop - onset).values[:, 0]
    pre = rec.epochs("stim_on", (0.0, onset), onset).values[:, 0]
    return pre, post


@pytest.mark.parametrize(
    ("snr", "choice_snr", "seed"), [(2.0, 0.0, 0), (0.0, 2.0, 1), (1.5, 1.5, 2)]
)
def test_decision_decoding_matches_the_planted_snr(snr, choice_snr, seed):
    n = 1000
    rec = make_decision(n_units=20, n_trials=n, snr=snr, choice_snr=choice_snr,
                        random_state=seed)
    gt = rec.meta["ground_truth"]
    pre, post = _decision_counts(rec)
    se = np.sqrt(0.25 / n)
    for target in ("stimulus", "choice"):
        y = rec.trials[target].to_numpy()
        expected = gt["ideal_accuracy"][target]
        after = _cv_accuracy(post, y)
        before = _cv_accuracy(pre, y)
        assert abs(after - expected) < 0.04, (target, after, expected)
        assert after > 0.5 + 8 * se
        assert abs(before - 0.5) < 3 * se, (target, before)


def test_decision_ideal_accuracy_has_the_closed_forms():
    assert ideal_accuracy(2.0, 0.0, 0.8) == pytest.approx(norm.cdf(1.0), abs=1e-8)
    assert ideal_accuracy(1.0, 0.0, 0.3) == pytest.approx(norm.cdf(0.5), abs=1e-8)
    p = norm.cdf(1.0)
    assert ideal_accuracy(0.0, 2.0, 0.8) == pytest.approx(0.8 * p + 0.2 * (1 - p), abs=1e-6)
    assert ideal_accuracy(0.0, 2.0, 0.2) == pytest.approx(0.8 * p + 0.2 * (1 - p), abs=1e-6)
    assert ideal_accuracy(1.0, 60.0, 1.0) == pytest.approx(1.0, abs=1e-8)
    assert ideal_accuracy(0.0, 0.0, 0.9) == pytest.approx(0.5, abs=1e-8)


def test_decision_snr_is_the_separation_along_the_coding_direction():
    n = 1000
    rec = make_decision(n_units=30, n_trials=n, snr=1.5, choice_snr=0.0, random_state=5)
    gt = rec.meta["ground_truth"]
    _, post = _decision_counts(rec)
    T = gt["coding_window"][1] - gt["coding_window"][0]
    b = np.asarray(gt["baseline_rates"])
    z = (post - b * T) / np.sqrt(b * T) @ np.asarray(gt["stimulus_direction"])
    s = rec.trials["stimulus"].to_numpy()
    sep = z[s == 1].mean() - z[s == 0].mean()
    sd = np.sqrt((z[s == 1].var(ddof=1) + z[s == 0].var(ddof=1)) / 2)
    assert sep / sd == pytest.approx(1.5, abs=0.2)  # SE of d' about 0.07
    assert sd == pytest.approx(1.0, abs=0.1)
    # the rate differences are the planted ones
    np.testing.assert_allclose(
        gt["stimulus_rate_difference"],
        np.sqrt(b / T) * 1.5 * np.asarray(gt["stimulus_direction"]),
    )
    assert np.asarray(gt["choice_rate_difference"]) == pytest.approx(0.0)
    u, v = np.asarray(gt["stimulus_direction"]), np.asarray(gt["choice_direction"])
    assert np.linalg.norm(u) == pytest.approx(1) and np.linalg.norm(v) == pytest.approx(1)
    assert u @ v == pytest.approx(0, abs=1e-12)


def test_decision_layout_and_choice_accuracy():
    rec = make_decision(n_units=10, n_trials=250, choice_accuracy=0.7, random_state=0)
    assert neuroml.make_decision is make_decision
    tr, gt = rec.trials, rec.meta["ground_truth"]
    assert list(tr.columns) == ["start_time", "stop_time", "stimulus", "choice", "correct",
                                "stim_on", "response_time"]
    assert tr["correct"].sum() == 175
    assert gt["choice_accuracy"] == pytest.approx(0.7)
    np.testing.assert_array_equal(tr["correct"], tr["choice"] == tr["stimulus"])
    assert sorted(tr["stimulus"].value_counts().tolist()) == [125, 125]
    assert set(tr["choice"]) == {0, 1}
    np.testing.assert_allclose(tr["stop_time"] - tr["stim_on"], 1.0, atol=1e-9)
    assert np.all(tr["response_time"] >= tr["stim_on"] + 0.3 + 0.35 - 1e-9)
    assert np.all(tr["response_time"] <= tr["stop_time"] + 1e-9)
    assert np.all(tr["start_time"].to_numpy()[1:] > tr["stop_time"].to_numpy()[:-1])
    assert rec.spikes.units["baseline_rate"].tolist() == gt["baseline_rates"]
    assert gt["signal_onset"] == 0.3 and gt["snr"] == 1.0 and gt["choice_snr"] == 1.0
    json.dumps(gt)


def test_decision_is_deterministic_under_the_seed():
    a = make_decision(n_units=8, n_trials=40, random_state=7)
    assert _same(a, make_decision(n_units=8, n_trials=40, random_state=7))
    assert _same(a, make_decision(n_units=8, n_trials=40,
                                  random_state=np.random.default_rng(7)))
    assert not a.spikes.equals(make_decision(n_units=8, n_trials=40, random_state=8).spikes)


def test_decision_spike_rates_match_the_baselines():
    rec = make_decision(n_units=10, n_trials=300, snr=0.0, choice_snr=0.0, random_state=3)
    b = np.asarray(rec.meta["ground_truth"]["baseline_rates"])
    duration = rec.trials["stop_time"].iloc[-1]
    rate = rec.spikes.counts / duration
    # Poisson: s.d. of the rate estimate is sqrt(b / duration)
    assert np.all(np.abs(rate - b) < 4 * np.sqrt(b / duration)), (rate, b)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_conditions": 1}, "n_conditions"),
        ({"n_trials": 5}, "n_trials"),
        ({"n_latents": 3}, "n_latents"),
        ({"n_latents": 0}, "n_latents"),
        ({"n_units": 0}, "n_units"),
        ({"dt": 0.0}, "dt"),
        ({"dt": 2.0}, "dt"),
        ({"trial_duration": -1.0}, "trial_duration"),
        ({"frequencies": [1.0]}, "frequencies"),
        ({"frequencies": [1.0, 80.0]}, "frequencies"),
        ({"max_rate": 4.0}, "max_rate"),
        ({"baseline_rate": 0}, "baseline_rate"),
        ({"noise": -0.1}, "noise"),
        ({"decay_time": 0}, "decay_time"),
        ({"random_state": -1}, "random_state"),
        ({"random_state": "seed"}, "random_state"),
    ],
)
def test_make_reaching_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ParameterError, match=f"'{name}' parameter of make_reaching"):
        make_reaching(**{"n_units": 5, "n_trials": 8, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"snr": -0.5}, "snr"),
        ({"choice_snr": -1.0}, "choice_snr"),
        ({"snr": float("inf")}, "snr"),
        ({"snr": 60.0}, "snr"),
        ({"signal_onset": 1.5}, "signal_onset"),
        ({"signal_onset": -0.1}, "signal_onset"),
        ({"choice_accuracy": 1.2}, "choice_accuracy"),
        ({"n_trials": 1}, "n_trials"),
        ({"n_units": 1}, "n_units"),
        ({"trial_duration": 0.0}, "trial_duration"),
        ({"baseline_rate": -1.0}, "baseline_rate"),
        ({"random_state": 1.5}, "random_state"),
    ],
)
def test_make_decision_rejects_bad_parameters(kwargs, name):
    with pytest.raises(ParameterError, match=f"'{name}'"):
        make_decision(**{"n_units": 5, "n_trials": 10, **kwargs})


# ----------------------------------------------------------------------------- samples

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "datasets" / "sample"


def _sample_script():
    spec = importlib.util.spec_from_file_location(
        "make_sample_datasets", ROOT / "scripts" / "make_sample_datasets.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="datasets/sample/ not present")
@pytest.mark.parametrize("name", ["reaching_0", "decision_2"])
def test_sample_files_are_what_the_script_generates(name):
    """The committed sample files equal a fresh run of the generators (no drift)."""
    make, kwargs = _sample_script().SESSIONS[name]
    fresh = make(**kwargs)
    with neuroml.load_recording(SAMPLE / f"{name}.nwb") as rec:
        assert rec.spikes.equals(fresh.spikes)
        assert rec.trials.equals(fresh.trials)
        for key in fresh.signals:
            # signals are floats computed by the generator: another CPU's libm may differ
            # in the last bits (integers, spikes and trials above stay exact)
            np.testing.assert_allclose(rec.signals[key].values, fresh.signals[key].values,
                                       rtol=1e-12, atol=0)
        assert rec.meta["identifier"] == fresh.meta["identifier"]
        inside = json.loads(rec.meta["notes"])["neuroml_ground_truth"]
    beside = json.loads((SAMPLE / f"{name}.json").read_text())
    fresh_truth = json.loads(_truth_of(fresh.meta["ground_truth"]))
    _assert_truth_close(json.loads(_truth_of(inside)), fresh_truth)
    _assert_truth_close(json.loads(_truth_of(beside)), fresh_truth)


def _assert_truth_close(got, expected, path="ground_truth"):
    """Equal JSON ground truth: floats within rtol 1e-12 (elementary functions differ in the
    last bits between CPUs and NumPy builds), everything else (ints, strings, keys) exact."""
    if isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), path
        for key in expected:
            _assert_truth_close(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), path
        for i, (g, e) in enumerate(zip(got, expected)):
            _assert_truth_close(g, e, f"{path}[{i}]")
    elif isinstance(expected, float) and not isinstance(expected, bool):
        assert isinstance(got, int | float), path
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300, err_msg=path)
    else:
        assert type(got) is type(expected) and got == expected, (path, got, expected)


def test_truth_comparison_tolerates_last_bits_only():
    base = {"a": [1.0, 2, "x"], "b": {"c": 0.1 + 0.2}}
    _assert_truth_close({"a": [1.0 + 2e-16, 2, "x"], "b": {"c": 0.3}}, base)
    for bad in ({"a": [1.001, 2, "x"], "b": {"c": 0.3}}, {"a": [1.0, 3, "x"], "b": {"c": 0.3}},
                {"a": [1.0, 2, "y"], "b": {"c": 0.3}}, {"a": [1.0, 2], "b": {"c": 0.3}}):
        with pytest.raises(AssertionError):
            _assert_truth_close(bad, base)


def test_sample_script_writes_loadable_files(tmp_path, monkeypatch):
    module = _sample_script()
    small = {"decision_x": (make_decision, {"n_units": 4, "n_trials": 6, "random_state": 0})}
    monkeypatch.setattr(module, "SESSIONS", small)
    module.main(["--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decision_x.json", "decision_x.nwb"]
    with neuroml.load_recording(tmp_path / "decision_x.nwb") as rec:
        assert len(rec.trials) == 6 and len(rec.spikes) == 4
