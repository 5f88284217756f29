"""What the sequence decoders share: standardisation, whole-trial validation, masked losses.

:class:`_SequenceEstimator` fits a network that maps ``(trial, time, unit)`` input to an
output at every time bin (``output="sequence"``) or one per trial (``output="last"``):

- inputs (and continuous targets) are standardised with the mean and standard deviation
  over the valid steps of the training trials;
- whole trials are held out for early stopping (``validation_fraction``);
- the loss is averaged over valid steps only: padded steps contribute nothing to the loss
  or the gradients;
- training runs through :class:`neuroml.training.Trainer` with minibatches of trials and
  the gradient norm clipped (``Trainer(max_grad_norm=MAX_GRAD_NORM)``).

A subclass provides ``_make_net(n_in, n_out)``: a module whose ``forward(x, lengths)``
maps standardised ``(trial, time, unit)`` values (zero at padded steps) and the trial
lengths to ``(trial, time, n_out)`` (or ``(trial, n_out)`` for ``output="last"``) and
whose outputs at valid steps do not depend on the padded steps.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.multiclass import check_classification_targets

from .._parallel import threads_for
from .._validation import Interval, Options
from ..base import NeuroMLEstimator
from ..device import seed_from, to_numpy, torch_seed
from ..errors import ParameterError
from ..training import TRAINING_CONSTRAINTS, Trainer
from ._sequence_data import Sequences, check_sequences, check_targets, wrap_outputs

#: Largest gradient norm of a training step (larger gradients are scaled down to it).
MAX_GRAD_NORM = 5.0
#: Trials per forward pass at prediction time (bounds the activations' memory).
_PREDICT_CHUNK = 512

#: The 2-D checks of scikit-learn's suite that sequence models cannot take.
_TWO_D_ONLY = (
    "{name} takes trial-structured input of shape (trial, time, unit) and refuses 2-D "
    "input with an error naming the expected shape; this check feeds 2-D (n_samples, "
    "n_features) arrays only"
)
_XFAIL_NAMES = (
    "check_estimators_dtypes", "check_fit_score_takes_y", "check_estimators_fit_returns_self",
    "check_complex_data", "check_dtype_object", "check_estimators_empty_data_messages",
    "check_pipeline_consistency", "check_estimators_overwrite_params",
    "check_estimator_sparse_array", "check_estimator_sparse_matrix", "check_estimator_sparse_tag",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_fit2d_predict1d",
    "check_methods_subset_invariance", "check_methods_sample_order_invariance",
    "check_fit2d_1sample", "check_fit2d_1feature", "check_dict_unchanged",
    "check_dont_overwrite_parameters", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_readonly_memmap_input", "check_requires_y_none",
    "check_supervised_y_2d", "check_estimators_nan_inf",
)
_XFAIL_REGRESSOR = ("check_regressors_train", "check_regressor_data_not_an_array",
                    "check_regressors_no_decision_function", "check_regressors_int",
                    "check_regressor_multioutput")
_XFAIL_CLASSIFIER = ("check_classifier_data_not_an_array", "check_classifiers_one_label",
                     "check_classifiers_classes", "check_classifiers_train",
                     "check_classifiers_regression_target")


def xfail_checks(name: str, classifier: bool) -> dict[str, str]:
    """scikit-learn checks that feed 2-D arrays only, with the reason, for ``name``."""
    names = _XFAIL_NAMES + (_XFAIL_CLASSIFIER if classifier else _XFAIL_REGRESSOR)
    return {check: _TWO_D_ONLY.format(name=name) for check in names}


#: Constraints of the parameters every sequence decoder has.
SEQUENCE_CONSTRAINTS = {
    "output": [Options(("sequence", "last"))],
    "dropout": [Interval(Real, 0, 1, "left")],
    "weight_decay": [Interval(Real, 0, None, "left")],
    "device": ["device"],
    "random_state": ["random_state"],
    **TRAINING_CONSTRAINTS,
}


def masked_moments(values: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation (1 where 0) over the valid steps, per last-axis entry.

    ``values`` is ``(trial, time, k)``, ``mask`` ``(trial, time)``; the standard
    deviation divides by the number of valid steps (as NumPy's ``std``).
    """
    var, mean = torch.var_mean(values[mask], dim=0, correction=0)
    std = var.sqrt()
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def last_step(out: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``out[i, lengths[i] - 1]`` for every trial ``i`` of ``(trial, time, k)`` outputs."""
    index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, out.shape[-1])
    return out.gather(1, index)[:, 0]


class _SequenceEstimator(NeuroMLEstimator):
    """Fitting and prediction shared by the recurrent and convolutional decoders."""

    _module_attributes: ClassVar[tuple[str, ...]] = ("module_",)
    _classifier: ClassVar[bool] = False

    # ------------------------------------------------------------------ hooks
    def _make_net(self, n_in: int, n_out: int) -> torch.nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _step_work(self, n_trials: int, n_times: int, n_units: int) -> float:  # pragma: no cover
        """Multiply-adds of the network's largest matrix product for ``n_trials`` trials
        (for :func:`neuroml._parallel.threads_for`: small products run one-threaded)."""
        raise NotImplementedError

    def _build_module(self) -> dict[str, torch.nn.Module]:
        """A fresh network shaped by the fitted attributes (for :func:`neuroml.load`)."""
        return {"module_": self._make_net(self.n_features_in_, self._n_net_outputs())}

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags

    @classmethod
    def _example_data(cls) -> tuple[tuple, tuple]:
        """Tiny seeded ``(fit_args, call_args)`` for the common tests (3-D input)."""
        rng = np.random.default_rng(0)
        X = rng.poisson(2.0, size=(12, 8, 3)).astype(np.float64)
        X[0, 6:] = np.nan  # one shorter trial
        if cls._classifier:
            y = np.arange(12) % 2
            if getattr(cls, "_default_output", "sequence") == "sequence":
                y = np.repeat(y[:, None], 8, axis=1)
        else:
            y = X[..., :2].cumsum(1) * 0.1
        return (X, y), (X, y)

    # ------------------------------------------------------------------ fit
    def _seq(self, X) -> Sequences:
        return check_sequences(X, owner=type(self).__name__, device=self.device_,
                               dtype=torch.float32)

    def _split(self, n_trials: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Whole trials held out for validation (none when ``validation_fraction`` is 0)."""
        if self.validation_fraction == 0:
            return np.arange(n_trials), np.arange(0)
        n_val = max(1, int(math.floor(self.validation_fraction * n_trials)))
        if n_trials - n_val < 1:
            raise ParameterError(
                f"{type(self).__name__} holds out whole trials for early stopping "
                f"(validation_fraction={self.validation_fraction!r}) and needs at least 2 "
                f"trials, one to train on and one to validate; got {n_trials}. Give more "
                "trials or pass validation_fraction=0 (no early stopping on held-out trials).")
        perm = np.random.default_rng(seed % (2**63)).permutation(n_trials)
        return np.sort(perm[n_val:]), np.sort(perm[:n_val])

    def _fit_sequences(self, X, y):
        """Validate, standardise, build the network and train it; returns self."""
        self._validate_params()
        self._resolve_device()
        self.__dict__.pop("module_", None)
        seq = self._seq(X)
        self._check_n_features(seq.n_units, reset=True)
        seed = seed_from(self.random_state)
        train, val = self._split(seq.n_trials, seed)
        targets = check_targets(y, seq, output=self.output, owner=type(self).__name__, X=X,
                                numeric=not self._classifier)
        dev = self.device_
        train_t = torch.as_tensor(train, device=dev)
        mean, scale = masked_moments(seq.values[train_t], seq.mask[train_t])
        self.mean_, self.scale_ = to_numpy(mean).astype(np.float64), to_numpy(scale).astype(
            np.float64)
        Xs = self._standardise(seq)
        Y = self._encode_targets(targets, seq, train_t)
        L = torch.as_tensor(seq.lengths, device=dev)
        # Without padding every step counts: the plain mean, and no mask to index.
        data = (Xs, Y, L, seq.mask.to(torch.float32)) if seq.padded else (Xs, Y, L)
        work = self._step_work(min(int(self.batch_size), seq.n_trials), seq.n_times, seq.n_units)
        with torch_seed(seed, dev), threads_for(work, dev):
            module = self._make_net(seq.n_units, self._n_net_outputs()).to(dev)
            trainer = Trainer(
                module, self._loss, max_epochs=self.max_epochs, batch_size=self.batch_size,
                lr=self.lr, weight_decay=self.weight_decay, optimizer=self.optimizer,
                validation_fraction=self.validation_fraction, patience=self.patience,
                verbose=self.verbose, seed=seed, max_grad_norm=MAX_GRAD_NORM,
            )
            self.history_ = trainer.fit(*data, split=(train, val))
        self.module_ = module.eval()
        self.n_iter_ = len(self.history_)
        self.best_epoch_ = int(trainer.best_epoch_)
        return self

    def _standardise(self, seq: Sequences) -> torch.Tensor:
        mean = torch.as_tensor(self.mean_, dtype=torch.float32, device=seq.values.device)
        scale = torch.as_tensor(self.scale_, dtype=torch.float32, device=seq.values.device)
        return torch.where(seq.mask[..., None], (seq.values - mean) / scale,
                           torch.zeros((), device=seq.values.device))

    def _loss(self, module, X, Y, L, M=None):
        """Mean loss over the valid steps (``M`` masks padded steps) or the trials."""
        per = self._pointwise_loss(module(X, L), Y)   # (trial, time) or (trial,)
        if M is None or self.output == "last":
            return per.mean()
        return (per * M).sum() / M.sum()

    # ------------------------------------------------------------------ predict
    @torch.no_grad()
    def _forward(self, X) -> tuple[torch.Tensor, Sequences]:
        """Network outputs (eval mode, chunks of trials) and the validated input."""
        self._check_fitted()
        seq = self._seq(X)
        self._check_n_features(seq.n_units, reset=False)
        Xs = self._standardise(seq)
        L = torch.as_tensor(seq.lengths, device=Xs.device)
        self.module_.eval()
        with threads_for(self._step_work(min(seq.n_trials, _PREDICT_CHUNK), seq.n_times,
                                          seq.n_units),
                         Xs.device):
            out = torch.cat([self.module_(Xs[i: i + _PREDICT_CHUNK], L[i: i + _PREDICT_CHUNK])
                             for i in range(0, seq.n_trials, _PREDICT_CHUNK)])
        return out, seq

    def _valid_pairs(self, X, y):
        """Targets and predictions at the valid steps (or trials), as NumPy."""
        pred, seq = self._predict_values(X)
        targets = check_targets(y, seq, output=self.output, owner=type(self).__name__, X=X,
                                numeric=not self._classifier)
        truth = targets.values
        if self.output == "sequence":
            valid = to_numpy(seq.mask)
            return truth[valid], pred[valid]
        return truth, pred


class _SequenceRegressor(RegressorMixin, _SequenceEstimator):
    """Continuous targets: half the mean squared error of the standardised targets."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _n_net_outputs(self) -> int:
        return self.n_outputs_

    def _encode_targets(self, targets, seq, train_t) -> torch.Tensor:
        Y = torch.as_tensor(targets.values, dtype=torch.float32, device=self.device_)
        self.n_outputs_ = int(Y.shape[-1])
        self.output_dim_, self.output_coords_ = targets.dim, targets.coords
        self.single_target_ = bool(targets.squeeze)
        if self.output == "sequence":
            mean, scale = masked_moments(Y[train_t], seq.mask[train_t])
        else:
            Yt = Y[train_t]
            mean = Yt.mean(0)
            scale = Yt.std(0, unbiased=False) if Yt.shape[0] > 1 else torch.ones_like(mean)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        self.target_mean_ = to_numpy(mean).astype(np.float64)
        self.target_scale_ = to_numpy(scale).astype(np.float64)
        return (Y - mean) / scale

    def _pointwise_loss(self, out, Y):
        return 0.5 * ((out - Y) ** 2).mean(-1)

    def _predict_values(self, X):
        out, seq = self._forward(X)
        mean = torch.as_tensor(self.target_mean_, dtype=out.dtype, device=out.device)
        scale = torch.as_tensor(self.target_scale_, dtype=out.dtype, device=out.device)
        return to_numpy(out * scale + mean).astype(np.float64), seq

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)
            NaN-padded at the end of shorter trials.

        Returns
        -------
        y_pred : same type as X
            ``output="sequence"``: shape (n_trials, n_times) for a single target (as it
            was given), else (n_trials, n_times, n_targets), NaN at padded steps;
            ``output="last"``: (n_trials,) or (n_trials, n_targets). A DataArray keeps
            the trial and time coordinates of ``X``.
        """
        out, seq = self._forward(X)
        mean = torch.as_tensor(self.target_mean_, dtype=out.dtype, device=out.device)
        scale = torch.as_tensor(self.target_scale_, dtype=out.dtype, device=out.device)
        out = out * scale + mean
        if self.single_target_:
            out = out[..., 0]
        return wrap_outputs(out, seq, output=self.output, feature_dim=self.output_dim_,
                            feature_coords=self.output_coords_, device=self.device_,
                            name="prediction")

    def score(self, X, y, sample_weight=None):
        """R^2 over the valid steps (uniform average over targets, as scikit-learn).

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)
        y : array-like, DataArray, tensor or str
            Targets as in ``fit``; values at padded steps are ignored.
        sample_weight : None
            Not supported (accepted for scikit-learn's signature).

        Returns
        -------
        float
        """
        no_weights(sample_weight, self)
        truth, pred = self._valid_pairs(X, y)
        return float(r2_score(truth, pred, multioutput="uniform_average"))


class _SequenceClassifier(ClassifierMixin, _SequenceEstimator):
    """Class labels: cross-entropy averaged over the valid steps (or trials)."""

    _classifier: ClassVar[bool] = True

    def _n_net_outputs(self) -> int:
        return len(self.classes_)

    def _encode_targets(self, targets, seq, train_t) -> torch.Tensor:
        labels = targets.values  # padded steps may hold anything (e.g. NaN): ignored
        valid = np.ones(labels.shape, bool) if self.output == "last" else to_numpy(seq.mask)
        observed = labels[valid]
        check_classification_targets(observed)
        classes, codes = np.unique(observed, return_inverse=True)
        if len(classes) < 2:
            raise ParameterError(
                f"{type(self).__name__} needs labels of at least 2 classes; got 1 class "
                f"({classes[0]!r}).")
        self.classes_ = classes
        encoded = np.zeros(labels.shape, dtype=np.int64)
        encoded[valid] = codes.ravel()
        return torch.as_tensor(encoded, device=self.device_)

    def _pointwise_loss(self, out, Y):
        if out.ndim == 3:
            return torch.nn.functional.cross_entropy(out.transpose(1, 2), Y, reduction="none")
        return torch.nn.functional.cross_entropy(out, Y, reduction="none")

    def _predict_values(self, X):
        out, seq = self._forward(X)
        return self.classes_[to_numpy(out.argmax(-1))], seq

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)

        Returns
        -------
        proba : same type as X
            ``output="sequence"``: (n_trials, n_times, n_classes), NaN at padded steps;
            ``output="last"``: (n_trials, n_classes). A DataArray has a ``class``
            dimension with the labels.
        """
        out, seq = self._forward(X)
        return wrap_outputs(torch.softmax(out, -1), seq, output=self.output,
                            feature_dim="class", feature_coords=self.classes_,
                            device=self.device_, name="probability")

    def predict(self, X):
        """Predicted labels.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)

        Returns
        -------
        labels : same type as X
            ``output="sequence"``: (n_trials, n_times), NaN at padded steps (numeric
            labels become float where there is padding); ``output="last"``: (n_trials,).
            A tensor input gives a tensor for numeric labels, else NumPy.
        """
        out, seq = self._forward(X)
        codes = out.argmax(-1)
        if seq.kind == "torch" and self.classes_.dtype.kind in "biuf":
            labels = torch.as_tensor(self.classes_, device=codes.device)[codes]
        else:
            labels = self.classes_[to_numpy(codes)]
        return wrap_outputs(labels, seq, output=self.output, device=self.device_,
                            name="prediction")

    def score(self, X, y, sample_weight=None):
        """Accuracy over the valid steps (``output="sequence"``) or trials (``"last"``).

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)
        y : array-like, DataArray or str
            Labels as in ``fit``.
        sample_weight : None
            Not supported (accepted for scikit-learn's signature).

        Returns
        -------
        float
        """
        no_weights(sample_weight, self)
        truth, pred = self._valid_pairs(X, y)
        return float(np.mean(truth == pred))


def no_weights(sample_weight, est) -> None:
    """Refuse ``sample_weight`` in ``score`` (accepted for scikit-learn's signature only)."""
    if sample_weight is not None:
        raise ParameterError(
            f"{type(est).__name__}.score does not support sample_weight; got {sample_weight!r}.")

