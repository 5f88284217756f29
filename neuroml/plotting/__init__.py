"""Figures for every analysis, drawn without pyplot.

Each function is ``plot_x(result, *, ax=None, **options)``: it draws into ``ax`` when
one is given, else into a new ``matplotlib.figure.Figure`` (with an Agg canvas, so
``ax.figure.savefig(path)`` works headless), and returns what it drew: the Axes
(``ax.figure`` is its Figure). No function touches pyplot's global state or closes a
figure.

- PCA: :func:`plot_explained_variance`, :func:`plot_trajectories`
- decoding: :func:`plot_decoding_over_time`, :func:`plot_temporal_generalization`,
  :func:`plot_confusion_matrix`
- training: :func:`plot_training_curves`
- spikes: :func:`plot_raster`, :func:`plot_psth`
- representation: :func:`plot_latents`, :func:`plot_traversal`, :func:`plot_elbo_terms`
- reinforcement learning: :func:`plot_rpe_heatmap`, :func:`plot_choice_probability`,
  :func:`plot_reversal_points`, :func:`plot_reward_distribution`,
  :func:`plot_parameter_recovery`, :func:`plot_rpe_response`
- sequence models: :func:`plot_predicted_behavior`, :func:`plot_decoder_scores`,
  :func:`plot_receptive_fields`, :func:`plot_tuning_curves`
"""

from ._common import get_axes, new_figure
from .decoding import plot_confusion_matrix, plot_decoding_over_time, plot_temporal_generalization
from .pca import plot_explained_variance, plot_trajectories
from .spikes import plot_psth, plot_raster
from .training import plot_training_curves

__all__ = [
    "new_figure",
    "get_axes",
    "plot_explained_variance",
    "plot_trajectories",
    "plot_decoding_over_time",
    "plot_temporal_generalization",
    "plot_confusion_matrix",
    "plot_training_curves",
    "plot_raster",
    "plot_psth",
]

# representation learning (neuroml/plotting/representation.py)
from .representation import plot_elbo_terms, plot_latents, plot_traversal  # noqa: E402

__all__ += ["plot_latents", "plot_traversal", "plot_elbo_terms"]

# reinforcement-learning models (neuroml/plotting/rl.py)
from .rl import (  # noqa: E402
    plot_choice_probability,
    plot_parameter_recovery,
    plot_reversal_points,
    plot_reward_distribution,
    plot_rpe_heatmap,
    plot_rpe_response,
)

__all__ += ["plot_rpe_heatmap", "plot_choice_probability", "plot_reversal_points",
            "plot_reward_distribution", "plot_parameter_recovery", "plot_rpe_response"]

# sequence, encoding and parametric models (neuroml/plotting/sequence.py)
from .sequence import (  # noqa: E402
    plot_decoder_scores,
    plot_predicted_behavior,
    plot_receptive_fields,
    plot_tuning_curves,
)

__all__ += ["plot_predicted_behavior", "plot_decoder_scores", "plot_receptive_fields",
            "plot_tuning_curves"]
