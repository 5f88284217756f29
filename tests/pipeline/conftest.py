"""Fixtures for the pipeline tests: tiny NWB recordings written once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from neuroml import Recording, make_decision

from . import _fake_steps  # noqa: F401  (registers the test steps)

#: A small pipeline over the built-in epochs step and a test step.
BASIC = """
name: basic
steps:
  - step: epochs
    params: {align_to: stim_on, window: [-0.2, 0.8], bin_size: 0.1}
    save: true
  - step: test_mean_rate
    params: {factor: 2.0}
"""


@pytest.fixture(scope="session")
def nwb_cache(tmp_path_factory) -> Path:
    """Three tiny decision recordings, a corrupt file and a recording without trials."""
    root = tmp_path_factory.mktemp("nwb")
    for i in range(3):
        make_decision(n_units=10, n_trials=30, random_state=i).to_nwb(root / f"dec_{i}.nwb")
    rng = np.random.default_rng(0)
    Recording.from_arrays(
        spike_times=[np.sort(rng.uniform(0, 10, 50)) for _ in range(4)], identifier="no-trials"
    ).to_nwb(root / "no_trials.nwb")
    good = (root / "dec_0.nwb").read_bytes()
    (root / "corrupt.nwb").write_bytes(good[: len(good) // 3])  # truncated HDF5
    return root


@pytest.fixture
def good_dir(nwb_cache, tmp_path) -> Path:
    """A fresh folder with the three good recordings."""
    d = tmp_path / "recordings"
    d.mkdir()
    for i in range(3):
        shutil.copy2(nwb_cache / f"dec_{i}.nwb", d)
    return d


@pytest.fixture
def mixed_dir(good_dir, nwb_cache) -> Path:
    """The good recordings plus a corrupt file and one without trials."""
    shutil.copy2(nwb_cache / "corrupt.nwb", good_dir)
    shutil.copy2(nwb_cache / "no_trials.nwb", good_dir)
    return good_dir


@pytest.fixture
def pipeline_file(tmp_path):
    """Write a pipeline text to a file and return its path."""

    def write(text: str = BASIC, name: str = "pipe.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
