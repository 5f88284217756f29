"""Synthetic recordings with planted ground truth.

Each generator returns a :class:`neuroml.Recording` (spikes, trials table, signals,
metadata) that can be written with ``rec.to_nwb(path)``; what generated the data is kept
in ``rec.meta["ground_truth"]`` (a JSON-serialisable dict), so analyses can be checked
against the truth.

- :func:`make_reaching`: center-out reaching; Poisson units driven by rotational latent
  dynamics (planted dynamics matrix, loading matrix, rotation frequencies).
- :func:`make_decision`: two-choice task; stimulus and choice codes that switch on at a
  planted time with a planted signal-to-noise ratio.

Both take ``random_state``: the same int seed gives an identical recording.
"""

from .decision import ideal_accuracy, make_decision
from .reaching import make_reaching

__all__ = ["make_reaching", "make_decision", "ideal_accuracy"]
