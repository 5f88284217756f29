"""neuroml: neural recordings in, results out.

Loaders (NWB, xarray) give :class:`Recording` objects; analyses are scikit-learn-style
estimators running on PyTorch (GPU when present); pipelines run them over folders of
recordings; :mod:`neuroml.plotting` draws the figures.

The public API is flat (``neuroml.PCA``, ``neuroml.load_recording`` ...) and imported
lazily, so ``import neuroml`` is fast and does not import torch until an estimator is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .errors import (
    ConfigError,
    DeviceError,
    NeuroMLError,
    ParameterError,
    RecordingError,
)

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    # errors: NotFittedError derives from scikit-learn's, imported on first use
    "NotFittedError": "neuroml.errors",
    # recordings
    "SpikeTrains": "neuroml.io.spikes",
    "Recording": "neuroml.io.recording",
    "make_signal": "neuroml.io.recording",
    "load_recording": "neuroml.io.nwb",
    "find_recordings": "neuroml.io.nwb",
    # synthetic data
    "make_reaching": "neuroml.datasets",
    "make_decision": "neuroml.datasets",
    # estimator contract
    "load": "neuroml.base",
    # analyses
    "PCA": "neuroml.decomposition",
    "LogisticDecoder": "neuroml.decoding",
    "LogisticDecoderCV": "neuroml.decoding",
    "LinearDecoder": "neuroml.decoding",
    "LinearDecoderCV": "neuroml.decoding",
    "TimeResolvedDecoder": "neuroml.decoding",
    "permutation_test": "neuroml.decoding",
    "MLPClassifier": "neuroml.nn",
    "MLPRegressor": "neuroml.nn",
    "Autoencoder": "neuroml.representation",
    "VAE": "neuroml.representation",
    "ContrastiveEmbedding": "neuroml.representation",
    "latent_traversal": "neuroml.representation",
    "consistency_score": "neuroml.representation",
}

__all__ = [
    "NeuroMLError",
    "RecordingError",
    "ParameterError",
    "ConfigError",
    "DeviceError",
    *_EXPORTS,
]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'neuroml' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:  # pragma: no cover
    from .base import load
    from .datasets import make_decision, make_reaching
    from .decoding import (
        LinearDecoder,
        LinearDecoderCV,
        LogisticDecoder,
        LogisticDecoderCV,
        TimeResolvedDecoder,
        permutation_test,
    )
    from .decomposition import PCA
    from .io.nwb import find_recordings, load_recording
    from .io.recording import Recording, make_signal
    from .io.spikes import SpikeTrains
    from .nn import MLPClassifier, MLPRegressor
    from .representation import (
        VAE,
        Autoencoder,
        ContrastiveEmbedding,
        consistency_score,
        latent_traversal,
    )
