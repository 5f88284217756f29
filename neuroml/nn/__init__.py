"""Neural-network and sequence estimators, and the field's decoding baselines.

- :class:`MLPClassifier`, :class:`MLPRegressor`: multi-layer perceptrons.
- :class:`RNNDecoder`, :class:`RNNClassifier`: recurrent (LSTM/GRU/RNN) decoders of
  ``(trial, time, unit)`` activity with NaN-padded variable-length trials.
- :class:`ConvDecoder`: causal dilated temporal-convolution decoder, same interface.
- :class:`WienerFilter`, :class:`KalmanDecoder`: the classic linear baselines.
- :class:`ConvEncodingModel`: a convolutional encoding model of images to responses, with
  the receptive field each neuron learned.
- :class:`ParametricRegressor`: a parametric model (sine, von Mises, ... or your own torch
  function) fit to every neuron at once.
"""

from .encoding import ConvEncodingModel
from .kalman import KalmanDecoder
from .mlp import MLPClassifier, MLPRegressor
from .parametric import ParametricRegressor
from .recurrent import RNNClassifier, RNNDecoder
from .temporal_conv import ConvDecoder
from .wiener import WienerFilter

__all__ = [
    "MLPClassifier",
    "MLPRegressor",
    "RNNDecoder",
    "RNNClassifier",
    "ConvDecoder",
    "WienerFilter",
    "KalmanDecoder",
    "ConvEncodingModel",
    "ParametricRegressor",
]
