"""Reinforcement-learning models of dopamine and of choice behaviour.

- Stimulus representations for TD (Ludvig, Sutton & Kehoe 2008):
  :func:`complete_serial_compound`, :func:`presence`, :func:`microstimulus`.
- Learners, pure batched torch functions (the leading axis holds subjects, cells,
  restarts or parameter sets; the one Python loop is over trials or time steps):
  :func:`rescorla_wagner`, :func:`td_learning`, :func:`distributional_td`.
- Estimators: :class:`TDModel`, :class:`RescorlaWagner`, :class:`DistributionalTD`, and
  :class:`QLearning` (choice models fit to behaviour by maximum likelihood, all subjects
  x restarts in one batched optimisation; the learner :func:`q_learning`).
- Bandit data: :func:`choices_from_trials` (a trials table to choices and rewards),
  :func:`read_choice_engineering` (the human two-armed bandit CSVs),
  :func:`read_dynamic_foraging` (AIND dynamic-foraging NWB); :func:`block_probabilities`
  and :func:`simulate_bandit` (task simulators).
- Exact :func:`expectiles` and :func:`quantiles` of discrete distributions.
- Dopamine analyses (Dabney et al. 2020): :func:`reward_responses`,
  :func:`reversal_point_analysis`, :func:`reversal_correlation`,
  :func:`decode_reward_distribution`; :func:`rpe_regression` (a neural signal on model
  RPEs, cross-validated R2 and a permutation p-value).

One TD convention everywhere: ``V(t) = w . x(t)``; ``delta(t) = r(t) + gamma V(t) -
V(t-1)``; ``e(t) = gamma lambda e(t-1) + x(t)``; ``w += alpha delta(t) e(t-1)``; traces
reset between trials. See ``docs/user-guide/rl.md``.
"""

from .bandit import block_probabilities, simulate_bandit
from .choice import QLearning
from .choice_data import choices_from_trials, read_choice_engineering, read_dynamic_foraging
from .distributional import DistributionalTD, default_taus, expectiles, quantiles
from .dopamine import reward_responses
from .features import complete_serial_compound, microstimulus, presence, time_since_onset
from .imputation import decode_reward_distribution
from .learners import distributional_td, rescorla_wagner, td_learning
from .q_learning import q_learning
from .reversal import reversal_correlation, reversal_point_analysis
from .rpe_regression import rpe_regression
from .td import RescorlaWagner, TDModel

__all__ = [
    "complete_serial_compound",
    "presence",
    "microstimulus",
    "time_since_onset",
    "rescorla_wagner",
    "td_learning",
    "distributional_td",
    "TDModel",
    "RescorlaWagner",
    "DistributionalTD",
    "expectiles",
    "quantiles",
    "default_taus",
    "reward_responses",
    "reversal_point_analysis",
    "reversal_correlation",
    "decode_reward_distribution",
    "rpe_regression",
    "q_learning",
    "QLearning",
    "choices_from_trials",
    "read_choice_engineering",
    "read_dynamic_foraging",
    "block_probabilities",
    "simulate_bandit",
]
