"""The built-in pipeline steps; importing this package registers them.

- :mod:`.preprocess`: ``bin_spikes``, ``epochs`` (spike counts, whole session or
  aligned to trials).
- :mod:`.pca`: ``pca`` (principal components, explained-variance and trajectory figures).
- :mod:`.decoding`: ``decode_condition`` (cross-validated logistic decoding of a trial
  label), ``decode_over_time`` (time-resolved decoding with a permutation null and
  temporal generalisation).
- :mod:`.psth`: ``psth`` (peri-stimulus time histograms and rasters).
- :mod:`.representation`: ``representation`` (VAE / contrastive / autoencoder latents).
- :mod:`.rl`: ``fit_choice_model`` (a Q-learning choice model per bandit session),
  ``rpe_response`` (a signal aligned to the outcome, regressed on the model's RPE).
- :mod:`.sequence`: ``decode_sequence`` (Wiener, Kalman and RNN decoders of a behaviour
  signal, held-out R2 per decoder on contiguous folds).

``neuroml steps`` prints every step's inputs, outputs and parameters.
"""

from . import (  # noqa: F401  (registers the steps)
    decoding,
    pca,
    preprocess,
    psth,
    representation,
    rl,
    sequence,
)
