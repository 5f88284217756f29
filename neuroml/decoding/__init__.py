"""neuroml.decoding: logistic and linear decoders, cross-validation, permutation nulls,
time-resolved decoding and temporal generalisation, batched on the device.

- :class:`LogisticDecoder`, :class:`LogisticDecoderCV`: multinomial logistic regression
  (scikit-learn's objective and ``C`` convention), batched L-BFGS / FISTA solvers.
- :class:`LinearDecoder`, :class:`LinearDecoderCV`: ridge regression for continuous
  targets.
- :func:`permutation_test`: permutation p-values with the null as one batched solve.
- :class:`TimeResolvedDecoder`: one decoder per time bin, all bins x folds at once, and
  the temporal-generalisation matrix.
"""

from .linear import LinearDecoder, LinearDecoderCV
from .logistic import LogisticDecoder, LogisticDecoderCV
from .permutation import PermutationResult, permutation_test
from .time_resolved import TimeResolvedDecoder

__all__ = [
    "LogisticDecoder",
    "LogisticDecoderCV",
    "LinearDecoder",
    "LinearDecoderCV",
    "TimeResolvedDecoder",
    "permutation_test",
    "PermutationResult",
]
