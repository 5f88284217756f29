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
    "make_latent_dynamics": "neuroml.datasets",
    "make_visual_population": "neuroml.datasets",
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
    "RNNDecoder": "neuroml.nn",
    "RNNClassifier": "neuroml.nn",
    "ConvDecoder": "neuroml.nn",
    "WienerFilter": "neuroml.nn",
    "KalmanDecoder": "neuroml.nn",
    "ConvEncodingModel": "neuroml.nn",
    "ParametricRegressor": "neuroml.nn",
    "Autoencoder": "neuroml.representation",
    "VAE": "neuroml.representation",
    "ContrastiveEmbedding": "neuroml.representation",
    "latent_traversal": "neuroml.representation",
    "consistency_score": "neuroml.representation",
    # reinforcement-learning models of dopamine and choice behaviour
    "TDModel": "neuroml.rl",
    "RescorlaWagner": "neuroml.rl",
    "DistributionalTD": "neuroml.rl",
    "QLearning": "neuroml.rl",
    "complete_serial_compound": "neuroml.rl",
    "microstimulus": "neuroml.rl",
    "rescorla_wagner": "neuroml.rl",
    "td_learning": "neuroml.rl",
    "q_learning": "neuroml.rl",
    "distributional_td": "neuroml.rl",
    "expectiles": "neuroml.rl",
    "reversal_point_analysis": "neuroml.rl",
    "reversal_correlation": "neuroml.rl",
    "decode_reward_distribution": "neuroml.rl",
    "reward_responses": "neuroml.rl",
    "rpe_regression": "neuroml.rl",
    "choices_from_trials": "neuroml.rl",
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
    from .datasets import (
        make_decision,
        make_latent_dynamics,
        make_reaching,
        make_visual_population,
    )
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
    from .nn import (
        ConvDecoder,
        ConvEncodingModel,
        KalmanDecoder,
        MLPClassifier,
        MLPRegressor,
        ParametricRegressor,
        RNNClassifier,
        RNNDecoder,
        WienerFilter,
    )
    from .representation import (
        VAE,
        Autoencoder,
        ContrastiveEmbedding,
        consistency_score,
        latent_traversal,
    )
    from .rl import (
        DistributionalTD,
        QLearning,
        RescorlaWagner,
        TDModel,
        choices_from_trials,
        complete_serial_compound,
        decode_reward_distribution,
        distributional_td,
        expectiles,
        microstimulus,
        q_learning,
        rescorla_wagner,
        reversal_correlation,
        reversal_point_analysis,
        reward_responses,
        rpe_regression,
        td_learning,
    )
