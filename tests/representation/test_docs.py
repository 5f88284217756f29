"""The user guide's examples run as written (docs/user-guide/representation.md)."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")


def test_user_guide_examples_run(tmp_path, run_user_guide, capsys):
    namespace, n_blocks = run_user_guide("representation.md")
    assert n_blocks == 4
    for name in ("vae_latents", "vae_latents_time", "vae_elbo_terms", "vae_training",
                 "vae_traversal", "contrastive_condition"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000, name
    out = capsys.readouterr().out
    r2 = float(re.search(r"R\^2 = ([0-9.]+)", out).group(1))
    accuracy = float(re.search(r"accuracy ([0-9.]+)", out).group(1))
    consistency = float(re.search(r"consistency ([0-9.]+)", out).group(1))
    assert r2 > 0.85 and accuracy > 0.85 and consistency > 0.85, out  # "about 0.9"
    assert namespace["latents"].dims == ("trial", "time", "latent")
