"""The built-in steps: numbers against NumPy / scikit-learn, figures, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from matplotlib.figure import Figure

from neuroml import Recording, make_decision, make_reaching
from neuroml.errors import RecordingError
from neuroml.pipeline import get_step
from neuroml.pipeline.registry import StepContext

CTX = StepContext(recording_id="test", device="cpu")


def run_step(name, **kwargs):
    spec = get_step(name)
    params = {**spec.defaults(), **kwargs.pop("params", {})}
    out = spec.func(CTX, **kwargs, **params)
    assert set(out) == set(spec.outputs)
    for key, o in spec.outputs.items():
        kind = {"array": xr.DataArray, "metrics": dict, "figure": Figure,
                "table": pd.DataFrame}[o.kind]
        assert isinstance(out[key], kind), key
    return out


@pytest.fixture(scope="module")
def decision():
    return make_decision(n_units=12, n_trials=40, random_state=3)


@pytest.fixture(scope="module")
def reaching():
    return make_reaching(n_units=15, n_trials=32, random_state=1)


def test_bin_spikes_matches_numpy_histogram(decision):
    out = run_step("bin_spikes", recording=decision, params={"bin_size": 0.5, "start": 0.0,
                                                            "stop": 10.0})
    binned = out["binned"]
    edges = np.arange(0, 10.0 + 1e-9, 0.5)
    for k, uid in enumerate(decision.spikes.unit_ids):
        expected, _ = np.histogram(decision.spikes[uid], edges)
        np.testing.assert_array_equal(binned.isel(unit=k).values, expected)
    rate = run_step("bin_spikes", recording=decision,
                    params={"bin_size": 0.5, "start": 0.0, "stop": 10.0, "scale": "rate"})
    np.testing.assert_allclose(rate["binned"].values, binned.values / 0.5)


@pytest.mark.parametrize("scale", ["counts", "rate", "sqrt", "zscore"])
def test_epochs_scales(decision, scale):
    base = decision.epochs("stim_on", (-0.2, 0.8), 0.1).values.astype(float)
    out = run_step("epochs", recording=decision,
                   params={"align_to": "stim_on", "window": [-0.2, 0.8], "bin_size": 0.1,
                           "scale": scale})
    expected = {
        "counts": base, "rate": base / 0.1, "sqrt": np.sqrt(base),
        "zscore": (base - base.mean((0, 1))) / np.where(base.std((0, 1)) > 0,
                                                         base.std((0, 1)), 1),
    }[scale]
    np.testing.assert_allclose(out["epochs"].values, expected, rtol=1e-12, atol=1e-12)
    assert out["epochs"].attrs["scale"] == scale
    assert out["epochs_info"] == {"table": "trials", "align_to": "stim_on", "n_trials": 40,
                                  "n_dropped": 0,
                                  "n_features": 12, "n_times": 10, "bin_size": 0.1}


def test_epochs_picks_the_first_column_present_and_drops_nan_events(decision):
    trials = decision.trials.copy()
    trials.loc[[2, 5], "stim_on"] = np.nan
    rec = decision.with_trials(trials)
    out = run_step("epochs", recording=rec,
                   params={"align_to": ["go_cue", "stim_on"], "window": [0.0, 0.5]})
    assert out["epochs_info"]["align_to"] == "stim_on"
    assert out["epochs_info"]["n_dropped"] == 2
    assert out["epochs"]["trial"].values.tolist() == [t for t in range(40) if t not in (2, 5)]
    with pytest.raises(RecordingError, match=r"no trials column \(any of \['go_cue', 'cue'\]\)"):
        run_step("epochs", recording=rec, params={"align_to": ["go_cue", "cue"]})
    with pytest.raises(RecordingError, match="only 38 trial"):
        run_step("epochs", recording=rec, params={"align_to": "stim_on", "min_trials": 39})


def test_epochs_without_trials_is_a_recording_error():
    rec = Recording.from_arrays(spike_times=[[0.1, 0.2]])
    with pytest.raises(RecordingError, match="has no trials table"):
        run_step("epochs", recording=rec)
    with pytest.raises(RecordingError, match="no interval table 'encoding'"):
        run_step("epochs", recording=rec, params={"table": "encoding"})


def test_epochs_from_an_interval_table(decision):
    table = decision.trials.rename(columns={"stim_on": "onset"})
    rec = Recording(spikes=decision.spikes, intervals={"encoding": table})
    out = run_step("epochs", recording=rec,
                   params={"table": ["missing", "encoding"], "align_to": "onset",
                           "window": [0.0, 0.5], "bin_size": 0.1})
    assert out["epochs_info"]["table"] == "encoding"
    expected = decision.epochs("stim_on", (0.0, 0.5), 0.1)
    np.testing.assert_array_equal(out["epochs"].values, expected.values)


def test_pca_matches_scikit_learn(reaching):
    from sklearn.decomposition import PCA as SkPCA

    epochs = reaching.epochs("go_cue", (-0.2, 0.6), 0.05)
    out = run_step("pca", data=epochs, params={"n_components": 4})
    X = epochs.values.reshape(-1, epochs.sizes["unit"]).astype(float)
    ref = SkPCA(4).fit(X)
    np.testing.assert_allclose(out["explained_variance"].values,
                               ref.explained_variance_ratio_, rtol=1e-8)
    np.testing.assert_allclose(out["latents"].values.reshape(-1, 4), ref.transform(X),
                               rtol=1e-6, atol=1e-8)
    assert out["latents"].dims == ("trial", "time", "component")
    assert "condition" in out["latents"].coords
    assert out["pca"]["variance_explained"] == pytest.approx(ref.explained_variance_ratio_.sum())
    assert out["pca"]["n_samples"] == X.shape[0] and out["pca"]["n_features"] == 15
    legend = out["pca_trajectories"].axes[0].get_legend()
    assert legend is not None and legend.get_title().get_text() == "condition"


def test_pca_caps_components_and_takes_2d_input(decision):
    binned = decision.bin(1.0)
    out = run_step("pca", data=binned, params={"n_components": 50})
    assert out["pca"]["n_components"] == 12  # capped at the number of units
    assert out["latents"].dims == ("time", "component")
    one = run_step("pca", data=binned, params={"n_components": 1})
    assert one["latents"].sizes["component"] == 1


def test_psth_is_the_condition_mean_rate(reaching):
    epochs = reaching.epochs("go_cue", (-0.2, 0.6), 0.1)
    out = run_step("psth", epochs=epochs, recording=reaching, params={"n_units": 3})
    psth = out["psth"]
    counts = epochs.values.astype(float)
    cond = epochs["condition"].values
    for c in np.unique(cond):
        np.testing.assert_allclose(psth.sel(condition=c).values,
                                   counts[cond == c].mean(0) / 0.1, rtol=1e-12)
    assert psth.attrs["units"] == "Hz"
    # the units shown are the three with the largest PSTH variance
    var = psth.values.reshape(-1, psth.sizes["unit"]).var(0)
    shown = sorted(np.argsort(-var)[:3])
    titles = [ax.get_title() for ax in out["psth_figure"].axes if ax.get_visible()]
    assert titles == [f"unit {epochs['unit'].values[i]}" for i in shown]
    assert len([a for a in out["raster_figure"].axes if a.get_visible()]) >= 3
    with pytest.raises(RecordingError, match=r"no unit\(s\) \[999\]"):
        run_step("psth", epochs=epochs, recording=reaching, params={"units": [999]})


def test_psth_without_grouping_column(decision):
    epochs = decision.epochs("stim_on", (-0.2, 0.4), 0.1)
    out = run_step("psth", epochs=epochs, recording=decision,
                   params={"by": "condition", "n_units": 2})
    np.testing.assert_allclose(out["psth"].values, epochs.values.mean(0) / 0.1)
    assert out["psth"].dims == ("time", "unit")


@pytest.mark.parametrize("model", ["vae", "contrastive", "autoencoder"])
def test_representation_is_reproducible(decision, model):
    pytest.importorskip("neuroml.representation")
    epochs = decision.epochs("stim_on", (-0.2, 0.6), 0.1)
    params = {"model": model, "max_epochs": 2, "n_latents": 2, "by": "stimulus",
              "hidden_layer_sizes": [8] if model != "contrastive" else [8, 8]}
    a = run_step("representation", data=epochs, params=params)
    b = run_step("representation", data=epochs, params=params)
    assert a["embedding"].dims == ("trial", "time", "latent")
    assert a["embedding"].sizes["latent"] == 2
    np.testing.assert_array_equal(a["embedding"].values, b["embedding"].values)
    assert a["representation"]["model"] == model
    assert a["representation"]["epochs_trained"] == len(a["training_history"]) <= 2
    assert {"epoch", "train_loss", "val_loss"} <= set(a["training_history"].columns)


# ---------------------------------------------------------------------- decoding
def _sklearn_nested_accuracy(X, y, Cs, inner, outer):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(),
                          LogisticRegressionCV(Cs=Cs, cv=StratifiedKFold(inner), max_iter=1000))
    pred = cross_val_predict(model, X, y, cv=StratifiedKFold(outer, shuffle=True,
                                                             random_state=0))
    return pred


@pytest.fixture(scope="module")
def planted():
    """Stimulus coded from 0.3 s after stimulus onset with d' = 4; no choice code."""
    return make_decision(n_units=16, n_trials=100, snr=4.0, choice_snr=0.0, random_state=7)


def test_decode_condition_matches_scikit_learn_and_the_planted_code(planted):
    epochs = planted.epochs("stim_on", (-0.3, 1.0), 0.1)
    out = run_step("decode_condition", epochs=epochs,
                   params={"label": ["condition", "stimulus"], "time_window": [0.3, 1.0],
                           "Cs": 4, "cv": 4, "inner_cv": 3})
    m = out["decoding"]
    assert m["label"] == "stimulus" and m["n_classes"] == 2 and m["n_trials"] == 100
    assert m["chance"] == pytest.approx(0.5)
    # against scikit-learn's LogisticRegressionCV on the same features and folds
    X = epochs.sel(time=slice(0.3, 1.0)).mean("time").values
    y = epochs["stimulus"].values
    ref = _sklearn_nested_accuracy(X, y, 4, 3, 4)
    pred = out["predictions"].values
    assert np.mean(pred == ref) >= 0.95
    assert m["accuracy"] == pytest.approx(np.mean(pred == y))
    assert abs(m["accuracy"] - np.mean(ref == y)) <= 0.05
    assert m["accuracy"] > 0.85  # ideal observer: Phi(4/2) = 0.98
    cm = out["confusion"]
    assert cm.dims == ("true", "predicted")
    np.testing.assert_array_equal(cm.sum("predicted").values, np.bincount(y))
    assert int(np.trace(cm.values)) == int(np.sum(pred == y))


def test_decode_condition_errors(decision):
    epochs = decision.epochs("stim_on", (0.0, 0.5), 0.1)
    with pytest.raises(RecordingError, match="no time bin centre lies in time_window"):
        run_step("decode_condition", epochs=epochs,
                 params={"label": "stimulus", "time_window": [2.0, 3.0]})
    lonely = epochs.assign_coords(odd=("trial", [0] * 39 + [1]))
    with pytest.raises(RecordingError, match="a single trial"):
        run_step("decode_condition", epochs=lonely, params={"label": "odd"})
    same = epochs.assign_coords(odd=("trial", [0] * 40))
    with pytest.raises(RecordingError, match="at least two classes"):
        run_step("decode_condition", epochs=same, params={"label": "odd"})


def test_max_statistic_pvalues_against_brute_force():
    from neuroml.pipeline.steps.decoding import max_statistic_pvalues

    rng = np.random.default_rng(0)
    null = rng.uniform(0.3, 0.7, size=(49, 6))
    score = np.array([0.5, 0.65, 0.71, 0.2, 0.69, 0.6])
    expected = [(1 + sum(max(row) >= s for row in null)) / 50 for s in score]
    np.testing.assert_allclose(max_statistic_pvalues(score, null), expected)
    assert max_statistic_pvalues([1.0], np.zeros((9, 1)))[0] == pytest.approx(0.1)


def test_decode_over_time_finds_the_planted_onset(planted):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from neuroml.pipeline.steps.decoding import max_statistic_pvalues

    epochs = planted.epochs("stim_on", (-0.2, 1.0), 0.2)  # code from 0.3 s to 1.0 s
    params = {"label": "stimulus", "n_permutations": 19, "C": 0.1, "cv": 4}
    out = run_step("decode_over_time", epochs=epochs, params=params)
    scores, pvalues, null = out["decoding_scores"], out["decoding_pvalues"], out["decoding_null"]
    assert scores.dims == ("fold", "time") and scores.sizes["fold"] == 4
    assert null.dims == ("permutation", "time") and null.sizes["permutation"] == 19
    np.testing.assert_allclose(pvalues.values,
                               max_statistic_pvalues(scores.values.mean(0), null.values))
    # per-bin accuracy against scikit-learn's LogisticRegression with the same folds
    y = epochs["stimulus"].values
    folds = StratifiedKFold(4, shuffle=True, random_state=0)
    ref = [cross_val_score(LogisticRegression(C=0.1, max_iter=1000),
                           epochs.isel(time=t).values, y, cv=folds).mean()
           for t in range(epochs.sizes["time"])]
    np.testing.assert_allclose(scores.values.mean(0), ref, atol=0.05)
    t = epochs["time"].values
    late = t > 0.4
    assert (scores.values.mean(0)[late] > 0.7).all()  # ideal observer per bin: 0.86
    assert (pvalues.values[late] <= 0.05).all()  # the smallest possible p is 1/20
    assert (pvalues.values[t < 0] > 0.05).all()  # no code before stimulus onset
    m = out["decoding_over_time"]
    assert m["n_significant_bins"] == int((pvalues.values <= 0.05).sum()) >= 3
    assert m["first_significant_time"] >= 0.0
    gen = out["temporal_generalization"]
    assert gen.dims == ("fold", "train_time", "test_time")
    diag = np.diagonal(gen.values.mean(0))
    np.testing.assert_allclose(diag, scores.values.mean(0), atol=1e-9)


def test_decode_over_time_without_permutations_or_generalisation(planted):
    epochs = planted.epochs("stim_on", (0.0, 1.0), 0.25)
    spec = get_step("decode_over_time")
    params = {**spec.defaults(), "label": "stimulus", "n_permutations": 0, "generalize": False}
    out = spec.func(CTX, epochs=epochs, **params)
    assert out["decoding_pvalues"] is None and out["decoding_null"] is None
    assert out["temporal_generalization"] is None
    assert out["temporal_generalization_figure"] is None
    assert out["decoding_over_time"]["n_significant_bins"] == 0
    assert isinstance(out["decoding_over_time_figure"], Figure)
