"""The pipeline step decode_sequence: numbers against independent fits, `neuroml run` end to end.

Synthetic reaching sessions (``make_reaching``, hand velocity in m/s) are written with
the package's NWB writer. The Wiener filter's R^2 is checked against scikit-learn's
``Ridge`` on a lagged design built here with NumPy, the Kalman decoder's and the RNN's
held-out predictions against ``KalmanDecoder`` / ``RNNDecoder`` fitted here on the same
contiguous folds, and the derivative of a position signal against its analytic value.
The C. elegans recording (Scholz et al. 2018) is read in place and compared with the
procedure of ``tests/nn/test_baselines_real.py``; skipped without it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import xarray as xr  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import r2_score  # noqa: E402

import neuroml.pipeline.steps.sequence  # noqa: E402, F401  (registers decode_sequence)
from neuroml import Recording, load_recording, make_reaching  # noqa: E402
from neuroml.cli import main  # noqa: E402
from neuroml.errors import RecordingError  # noqa: E402
from neuroml.nn.kalman import KalmanDecoder  # noqa: E402
from neuroml.nn.recurrent import RNNDecoder  # noqa: E402
from neuroml.pipeline import get_step, load_pipeline  # noqa: E402
from neuroml.pipeline.registry import StepContext  # noqa: E402
from tests.conftest import REAL_DATA  # noqa: E402
from tests.nn.test_baselines_real import (  # noqa: E402
    ALPHAS,
    block_cv,
    r2_per_output,
    wiener_inner_alpha,
    worm,  # noqa: F401  (the fixture: activity, velocity in um/s, run of each bin)
)

CTX = StepContext(recording_id="test", device="cpu")
READY = Path(__file__).resolve().parents[2] / "pipelines" / "decode_sequence.yaml"
SMALL_RNN = {"hidden_size": 8, "max_epochs": 3, "chunk": 40}


def run_step(**params):
    spec = get_step("decode_sequence")
    rec = params.pop("recording")
    out = spec.func(CTX, recording=rec, **{**spec.defaults(), **params})
    assert set(out) == set(spec.outputs)
    kinds = {"array": xr.DataArray, "metrics": dict, "figure": Figure}
    for key, o in spec.outputs.items():
        assert isinstance(out[key], kinds[o.kind]), key
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("reaching")
    for i in range(2):
        make_reaching(n_units=12, n_trials=24, random_state=i).to_nwb(root / f"reach_{i}.nwb")
    return root


@pytest.fixture(scope="module")
def rec(folder):
    return load_recording(folder / "reach_0.nwb")


def lagged_rows(X, n_lags, index):
    """Design rows [x_t, x_{t-1}, ...] for the bins of ``index`` that have a full history
    inside their contiguous stretch of ``index``; returns (rows, which bins)."""
    stretch = np.cumsum(np.r_[True, np.diff(index) != 1])
    rows, which = [], []
    for s in np.unique(stretch):
        part = index[stretch == s]
        for k in range(n_lags - 1, len(part)):
            rows.append(np.concatenate([X[part[k - lag]] for lag in range(n_lags)]))
            which.append(part[k])
    return np.asarray(rows), np.asarray(which)


def pieces(X, Y, index):
    """NaN-padded (trial, time, .) arrays, one trial per contiguous stretch of ``index``."""
    parts = np.split(index, np.flatnonzero(np.diff(index) != 1) + 1)
    n = max(map(len, parts))
    Xt = np.full((len(parts), n, X.shape[1]), np.nan)
    Yt = np.full((len(parts), n, Y.shape[1]), np.nan)
    for i, p in enumerate(parts):
        Xt[i, : len(p)], Yt[i, : len(p)] = X[p], Y[p]
    return Xt, Yt, parts


# ---------------------------------------------------------------------- continuous recording
def test_continuous_wiener_and_kalman_equal_independent_fits(rec):
    out = run_step(recording=rec, decoders=["wiener", "kalman"], n_lags=4, alpha=10.0, cv=4)
    m, pred = out["sequence_decoding"], out["sequence_predictions"]
    # the data: spike counts in 50 ms bins over the behaviour signal, velocity at bin centres
    sig = rec.signal("hand_velocity")
    binned = rec.bin(0.05, start=0.0, stop=float(sig.time[-1]))
    inside = binned.time.values <= float(sig.time[-1])  # the last centre lies past the signal
    X = binned.values.astype(float)[inside]
    t = binned.time.values[inside]
    Y = np.stack([np.interp(t, sig.time.values, sig.values[:, j].astype(float))
                  for j in range(2)], 1)
    np.testing.assert_allclose(pred.time.values, t)
    np.testing.assert_allclose(pred["observed"].values, Y, rtol=1e-6)
    ridge_pred = np.full_like(Y, np.nan)
    kalman_pred = np.full_like(Y, np.nan)
    for test in np.array_split(np.arange(len(t)), 4):  # contiguous blocks, as sklearn's KFold
        train = np.setdiff1d(np.arange(len(t)), test)
        F, rows = lagged_rows(X, 4, train)
        Ft, rows_t = lagged_rows(X, 4, test)
        ridge_pred[rows_t] = Ridge(alpha=10.0).fit(F, Y[rows]).predict(Ft)
        kf = KalmanDecoder(device="cpu").fit(*pieces(X, Y, train)[:2])
        Xt, _, parts = pieces(X, Y, test)
        p = kf.predict(Xt)
        for i, part in enumerate(parts):
            kalman_pred[part] = p[i, : len(part)]
    ok = np.isfinite(ridge_pred).all(1)
    np.testing.assert_array_equal(pred["scored"].values, ok)
    np.testing.assert_allclose(pred.sel(decoder="wiener").values[ok], ridge_pred[ok],
                               rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(pred.sel(decoder="kalman").values, kalman_pred, rtol=1e-6,
                               atol=1e-9)
    for name, ref in (("wiener", ridge_pred), ("kalman", kalman_pred)):
        per = r2_score(Y[ok], ref[ok], multioutput="raw_values")
        assert m[f"r2_{name}_vx"] == pytest.approx(per[0], rel=1e-6)
        assert m[f"r2_{name}_vy"] == pytest.approx(per[1], rel=1e-6)
        assert m[f"r2_{name}"] == pytest.approx(per.mean(), rel=1e-6)
    assert m["r2_wiener"] > 0  # better than the mean: 12 units carry some of the reach
    assert (m["mode"], m["n_sequences"], m["n_folds"], m["n_bins"]) == \
        ("continuous", 1, 4, int(ok.sum()))
    assert m["wiener_alpha"] == [10.0] * 4
    # per-fold scores on the same bins; the pooled score as a coordinate
    scores = out["sequence_scores"]
    assert scores.dims == ("decoder", "fold") and scores.shape == (2, 4)
    fold = pred["fold"].values
    f1 = ok & (fold == 1)
    assert float(scores.sel(decoder="wiener", fold=1)) == pytest.approx(
        r2_score(Y[f1], ridge_pred[f1]), rel=1e-6)
    np.testing.assert_allclose(scores["pooled"].values, [m["r2_wiener"], m["r2_kalman"]])


def test_alpha_is_chosen_inside_each_training_set(rec):
    """With a list, each fold's alpha is the best on the last fifth of its training bins
    (a ridge fitted on the first four fifths), as scikit-learn's Ridge picks it."""
    alphas = [0.1, 100.0, 1e5]
    out = run_step(recording=rec, decoders=["wiener"], n_lags=3, alpha=alphas, cv=3)
    pred = out["sequence_predictions"]
    X = rec.bin(0.05, start=0.0, stop=float(rec.signal("hand_velocity").time[-1])).values
    X = X[: pred.sizes["time"]].astype(float)
    Y = pred["observed"].values
    expected = []
    for test in np.array_split(np.arange(len(Y)), 3):
        train = np.setdiff1d(np.arange(len(Y)), test)
        cut = int(0.8 * len(train))
        F, rows = lagged_rows(X, 3, train[:cut])
        Fv, rows_v = lagged_rows(X, 3, train[cut:])
        scores = [r2_score(Y[rows_v], Ridge(alpha=a).fit(F, Y[rows]).predict(Fv))
                  for a in alphas]
        expected.append(alphas[int(np.argmax(scores))])
    assert out["sequence_decoding"]["wiener_alpha"] == expected


# ---------------------------------------------------------------------- trials
def test_trials_rnn_predictions_equal_an_rnn_fitted_on_the_training_trials(rec):
    out = run_step(recording=rec, align_to="go_cue", window=[-0.2, 0.8], cv=3,
                   decoders=["rnn", "kalman"], random_state=3, **SMALL_RNN)
    m, pred = out["sequence_decoding"], out["sequence_predictions"]
    X = rec.epochs("go_cue", (-0.2, 0.8), 0.05).values.astype(float)
    Y = rec.epochs("go_cue", (-0.2, 0.8), 0.05, source="hand_velocity").values
    assert pred.dims == ("decoder", "trial", "time", "channel")
    assert pred.shape == (2, 24, 20, 2)
    np.testing.assert_allclose(pred["observed"].values, Y)
    assert pred["condition"].values.tolist() == rec.trials["condition"].tolist()
    test = np.arange(8, 16)  # the middle of three blocks of whole trials
    train = np.setdiff1d(np.arange(24), test)
    np.testing.assert_array_equal(pred["fold"].values, np.repeat([0, 1, 2], 8))
    mean, std = Y[train].reshape(-1, 2).mean(0), Y[train].reshape(-1, 2).std(0)
    rnn = RNNDecoder(hidden_size=8, max_epochs=3, device="cpu", random_state=3)
    rnn.fit(X[train], (Y[train] - mean) / std)
    expected = rnn.predict(X[test]) * std + mean
    np.testing.assert_allclose(pred.sel(decoder="rnn").values[test], expected, rtol=1e-5,
                               atol=1e-7)
    assert m["rnn_epochs"] == [3, 3, 3]
    assert pred.decoder.values.tolist() == ["kalman", "rnn"]  # always in this order
    truth = Y.reshape(-1, 2)
    for name in ("kalman", "rnn"):
        flat = pred.sel(decoder=name).values.reshape(-1, 2)
        assert m[f"r2_{name}"] == pytest.approx(r2_score(truth, flat), rel=1e-9)
    assert (m["mode"], m["align_to"], m["n_sequences"]) == ("trials", "go_cue", 24)


def test_derivative_of_a_position_signal_with_a_gap_from_fluorescence():
    """Velocity from a position signal, decoded from 'cell_*' signals; no bin in the gap."""
    rng = np.random.default_rng(0)
    t = np.arange(0, 60, 0.1)
    t = t[(t < 30) | (t >= 35)]  # no samples from 30 to 35 s
    position = np.sin(0.5 * t)
    velocity = 0.5 * np.cos(0.5 * t)
    cells = {f"cell_{i}": (t, w * velocity + 0.05 * rng.normal(size=t.size))
             for i, w in enumerate(rng.uniform(0.5, 2.0, 5))}
    rec = Recording.from_arrays(signals={"position": (t, position), "other": (t, position),
                                         **cells})
    out = run_step(recording=rec, behavior=["pos", "position"], derivative=True,
                   activity="cell_*", bin_size=None, decoders=["wiener"], n_lags=1, alpha=1e-3)
    m, pred = out["sequence_decoding"], out["sequence_predictions"]
    assert m["n_features"] == 5 and m["n_sequences"] == 2 and m["behavior"] == "position"
    np.testing.assert_allclose(pred.time.values, t)  # the signals' own samples
    inner = (np.abs(t - 30) > 0.5) & (np.abs(t - 35) > 0.5) & (t > 0.5) & (t < 59.4)
    np.testing.assert_allclose(pred["observed"].values[inner, 0], velocity[inner], atol=2e-3)
    assert np.unique(pred["sequence"].values[t < 30]).tolist() == [0]
    assert m["r2_wiener"] > 0.95
    # resampled to 0.5 s bins within each run: no bin centre inside the gap
    out = run_step(recording=rec, behavior="position", derivative=True, smooth=0.3,
                   activity="cell_*", bin_size=0.5, decoders=["wiener"], n_lags=2, cv=3)
    times = out["sequence_predictions"].time.values
    assert not ((times > 29.9) & (times < 35.0)).any()
    np.testing.assert_allclose(np.diff(times[times < 29]), 0.5)
    assert out["sequence_decoding"]["bin_size"] == 0.5


def test_errors_name_what_is_wrong(rec):
    with pytest.raises(RecordingError, match=r"no signal 'speed'.*hand_velocity"):
        run_step(recording=rec, behavior="speed")
    with pytest.raises(RecordingError, match=r"no signal matches activity='Activity_\*'"):
        run_step(recording=rec, activity="Activity_*")
    with pytest.raises(RecordingError, match="no trials column 'reach_onset'"):
        run_step(recording=rec, align_to="reach_onset")
    with pytest.raises(RecordingError, match="no channel"):
        run_step(recording=rec, channels=["vz"])
    with pytest.raises(RecordingError, match="cannot make cv=30 folds"):
        run_step(recording=rec, align_to="go_cue", cv=30, decoders=["wiener"])
    bare = Recording.from_arrays(signals={"hand_velocity": (np.arange(10.0), np.ones(10))})
    with pytest.raises(RecordingError, match="no spike trains"):
        run_step(recording=bare)


# ---------------------------------------------------------------------- neuroml run
def test_neuroml_run_writes_a_summary_row_per_recording(folder, tmp_path):
    """The ready pipeline validates; a quick variant of it runs on two NWB recordings."""
    ready = load_pipeline(READY)
    assert ready.steps[0].step == "decode_sequence"
    text = READY.read_text().replace("max_epochs: 200", "max_epochs: 3").replace(
        "hidden_size: 64", "hidden_size: 8").replace("cv: 5", "cv: 3")
    pipe = tmp_path / "seq.yaml"
    pipe.write_text(text)
    out = tmp_path / "out"
    assert main(["run", str(pipe), str(folder), "--out", str(out), "-q", "--device", "cpu"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary["recording"].tolist() == ["reach_0", "reach_1"]
    assert (summary["status"] == "ok").all()
    for name in ("wiener", "kalman", "rnn"):
        assert summary[f"sequence_decoding.r2_{name}"].notna().all()
    files = {p.name for p in (out / "reach_1").iterdir()}
    assert {"sequence_decoding.json", "sequence_scores.nc", "sequence_predictions.nc",
            "sequence_decoding_figure.png"} <= files
    # the summary's numbers are the R^2 of the saved held-out predictions
    pred = xr.load_dataarray(out / "reach_1" / "sequence_predictions.nc")
    truth = pred["observed"].values.reshape(-1, 2)
    ok = np.isfinite(pred.values).all(axis=(0, 3)).ravel()
    for i, name in enumerate(pred.decoder.values):
        r2 = r2_score(truth[ok], pred.values[i].reshape(-1, 2)[ok])
        assert summary.loc[1, f"sequence_decoding.r2_{name}"] == pytest.approx(r2, rel=1e-6)
    assert (out / "reach_1" / "sequence_decoding_figure.png").stat().st_size > 20_000


# ---------------------------------------------------------------------- real data
WORM = REAL_DATA / "celegans_wholebrain_calcium_position_scholz2018.nwb"


@pytest.mark.skipif(not WORM.exists(), reason=f"real data file {WORM.name} is not available")
def test_celegans_through_neuroml_run_equals_the_baseline_procedure(tmp_path, worm):  # noqa: F811
    """Wiener filter and Kalman decoder on the worm's velocity, as test_baselines_real."""
    rec = load_recording(WORM)
    frame = float(np.median(np.diff(rec.signal("ss_2D").time.values)))
    pipe = tmp_path / "worm.yaml"
    pipe.write_text(f"""
steps:
  - step: decode_sequence
    params:
      behavior: ss_2D
      derivative: true
      smooth: {4 * frame!r}
      activity: "Activity_*"
      bin_size: null
      n_lags: 3
      alpha: {list(ALPHAS)}
      hidden_size: 16
      max_epochs: 10
      chunk: 50
      figure_window: [0, 440]
""")
    out = tmp_path / "out"
    assert main(["run", str(pipe), str(WORM), "--out", str(out), "-q", "--device", "cpu"]) == 0
    row = pd.read_csv(out / "summary.csv").iloc[0]
    activity, velocity, run = worm
    truth, pred = block_cv(wiener_inner_alpha(activity, velocity, run), activity, velocity, run)
    ref = r2_per_output(truth, pred)
    assert row["sequence_decoding.r2_wiener_0"] == pytest.approx(ref[0], rel=1e-6)
    assert row["sequence_decoding.r2_wiener_1"] == pytest.approx(ref[1], rel=1e-6)
    assert row["sequence_decoding.n_features"] == 62
    assert row["sequence_decoding.n_sequences"] == 8
    # the Kalman decoder's held-out estimates, bin by bin (velocity in um/s there)
    saved = xr.load_dataarray(out / rec.id / "sequence_predictions.nc")
    _, kalman = block_cv(lambda X, Y, _: KalmanDecoder(device="cpu").fit(X, Y), activity,
                         velocity, run)
    np.testing.assert_allclose(saved.sel(decoder="kalman").values * 1e6, kalman, rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(saved["observed"].values * 1e6, velocity, rtol=1e-9, atol=1e-9)
    assert np.isfinite(row["sequence_decoding.r2_rnn"])
