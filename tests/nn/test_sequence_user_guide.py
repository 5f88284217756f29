"""docs/user-guide/sequence-models.md runs as written, and shows what its text says.

The page decodes the C. elegans recording (Scholz et al. 2018) read in place from
../shared/data/real; without it the test skips. The numbers the text states are
checked with tolerances (the networks run on the default device in float32, so a GPU
takes another training path: their scores are checked loosely).
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

import neuroml.pipeline.steps.sequence  # noqa: E402, F401  (registers decode_sequence)
from tests.conftest import REAL_DATA  # noqa: E402

PAGE = Path(__file__).resolve().parents[2] / "docs" / "user-guide" / "sequence-models.md"
WORM = "celegans_wholebrain_calcium_position_scholz2018.nwb"


def test_user_guide_examples_run(tmp_path, run_user_guide, capsys):
    if not (REAL_DATA / WORM).exists():
        pytest.skip(f"real data file {WORM!r} is not available (looked in {REAL_DATA})")
    ns, n_blocks = run_user_guide("sequence-models.md")
    capsys.readouterr()
    assert n_blocks == 9
    for name in ("latent_dynamics_decoders", "latent_dynamics_scores", "receptive_fields",
                 "tuning_curves"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000, name
    # default networks beat the linear baselines by a wide margin (issue 12: >= 0.8 vs ~0.6)
    counts, behaviour, test = ns["counts"], ns["behaviour"], ns["test"]
    wiener = ns["wiener"].score(counts[test], behaviour[test])
    kalman = ns["kalman"].score(counts[test], behaviour[test])
    assert wiener == pytest.approx(0.60, abs=0.01) and kalman == pytest.approx(0.56, abs=0.01)
    scores = ns["scores"]
    assert set(scores) == {"lstm", "gru", "rnn", "conv"}
    assert min(scores.values()) >= 0.8 and min(scores.values()) - wiener > 0.15
    assert scores["lstm"] == pytest.approx(0.85, abs=0.04)  # float32 training (any device)
    assert ns["lstm"].n_iter_ < ns["lstm"].max_epochs  # stopped early
    # padding and causality
    assert ns["valid"] == 60 and ns["gap"] < 1e-5
    assert ns["same"]
    # C. elegans: the numbers of the table
    r2, r = ns["r2"], ns["r"]
    assert r2["wiener"] == pytest.approx([0.14, -0.06], abs=0.006)
    assert r2["kalman"] == pytest.approx([-1.67, -4.82], abs=0.006)
    assert r2["rnn"] == pytest.approx([0.11, -0.08], abs=0.05)
    assert r2["rnn"][0] < r2["wiener"][0] + 0.05  # "no better than the Wiener filter"
    assert r == pytest.approx({"wiener": 0.38, "kalman": 0.35, "rnn": 0.34}, abs=0.05)
    assert ns["report"].ok and int(ns["pred"]["scored"].sum()) == 2220
    # the encoding model: FEVE against ridge, receptive fields against the planted Gabors
    means = ns["table"].groupby("cell").mean()
    assert means.loc["simple", "cnn"] == pytest.approx(0.86, abs=0.05)
    assert means.loc["complex", "cnn"] == pytest.approx(0.80, abs=0.05)
    assert means.loc["simple", "ridge"] == pytest.approx(0.51, abs=0.02)
    assert means.loc["complex", "ridge"] < 0.05
    assert min(ns["match"]) >= 0.9  # measured 0.93 or more (issue 12: >= 0.9)
    # tuning curves: every fit equals curve_fit's, and the batched fit is faster
    assert ns["agree"] == 1.0
    assert ns["t_scipy"] > 2 * ns["t_neuroml"]  # one core each (the page says ~8 times)


def test_user_guide_states_the_conventions_and_defaults():
    text = PAGE.read_text()
    for phrase in ("Causal by default", "bidirectional=False", "float32", "float64",
                   'device="auto"', "NaN-padded", "contiguous", "default training parameters"):
        assert phrase in text, phrase
    from neuroml.nn import ConvDecoder, RNNDecoder, WienerFilter

    # the defaults the page states are the estimators' defaults
    rnn = RNNDecoder()
    assert (rnn.hidden_size, rnn.batch_size, rnn.lr, rnn.max_epochs, rnn.patience,
            rnn.validation_fraction, rnn.bidirectional) == (64, 16, 3e-3, 200, 20, 0.1, False)
    assert "hidden size 64, minibatches of 16 trials, Adam at 3e-3, at most 200 epochs" in \
        " ".join(text.split())
    assert WienerFilter().alpha == 1.0
    conv = ConvDecoder()
    assert 1 + (conv.kernel_size - 1) * (2 ** conv.n_layers - 1) == 31  # "31 with the defaults"
    # every figure function the page calls is in neuroml.plotting.sequence
    import neuroml.plotting.sequence as figs

    for name in set(re.findall(r"(plot_\w+)\(", text)):
        assert hasattr(figs, name), name
    # the ready pipeline the page names exists
    assert (PAGE.parents[2] / "pipelines" / "decode_sequence.yaml").exists()
