"""Synthetic recordings with planted ground truth.

Each generator returns a :class:`neuroml.Recording` (spikes, trials table, signals,
metadata) that can be written with ``rec.to_nwb(path)``; what generated the data is kept
in ``rec.meta["ground_truth"]`` (a JSON-serialisable dict), so analyses can be checked
against the truth.

- :func:`make_reaching`: center-out reaching; Poisson units driven by rotational latent
  dynamics (planted dynamics matrix, loading matrix, rotation frequencies).
- :func:`make_decision`: two-choice task; stimulus and choice codes that switch on at a
  planted time with a planted signal-to-noise ratio.

Two generators return labelled arrays rather than a Recording (their data are stimuli
and responses, or trial-aligned counts and behaviour):

- :func:`make_latent_dynamics`: spiking units driven by nonlinear latent dynamics and a
  behaviour that depends nonlinearly on the latent state (for sequence decoders).
- :func:`make_visual_population`: natural-like images, planted Gabor simple cells and
  energy-model complex cells, Poisson responses with repeated test presentations.

All take ``random_state``: the same int seed gives an identical recording.
"""

from .decision import ideal_accuracy, make_decision
from .latent_dynamics import make_latent_dynamics
from .reaching import make_reaching
from .visual import make_visual_population

__all__ = ["make_reaching", "make_decision", "ideal_accuracy", "make_latent_dynamics",
           "make_visual_population"]
