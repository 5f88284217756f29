"""Multi-layer perceptrons (classifier and regressor) trained by :class:`neuroml.training.Trainer`.

The networks are those of scikit-learn's ``MLPClassifier`` / ``MLPRegressor``: fully
connected hidden layers, Glorot-uniform initialisation, a logistic output for two
classes, softmax for more, identity output for regression, and an L2 penalty with
scikit-learn's scaling (``alpha / (2 n_batch) * sum ||W||^2`` added to the mean loss of
each minibatch; biases are not penalised). On top: dropout, GELU, device placement,
early stopping on a validation split with the best weights restored, and a
``history_`` table of the training curves.

The network trains in the precision of the input (float32 stays float32, anything else
is float64, as scikit-learn); pass float32 arrays or tensors for speed on a GPU.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets

from .._validation import Interval, Options
from ..base import NeuroMLEstimator
from ..device import seed_from, to_numpy, to_tensor, torch_seed
from ..errors import ParameterError
from ..training import TRAINING_CONSTRAINTS, Trainer

__all__ = ["MLPClassifier", "MLPRegressor"]

_ACTIVATIONS = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "sigmoid": torch.nn.Sigmoid,
                "gelu": torch.nn.GELU}

#: Rows per forward pass at prediction time (bounds the activations' memory).
_PREDICT_CHUNK = 1 << 16


class _MLPNet(torch.nn.Module):
    """``Linear -> activation [-> Dropout]`` per hidden layer, then a linear output."""

    def __init__(self, n_in: int, hidden: tuple[int, ...], n_out: int, activation: str,
                 dropout: float):
        super().__init__()
        layers: list[torch.nn.Module] = []
        sizes = [n_in, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            layers += [torch.nn.Linear(fan_in, fan_out), _ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(torch.nn.Dropout(dropout))
        layers.append(torch.nn.Linear(sizes[-1], n_out))
        self.layers = torch.nn.Sequential(*layers)
        # scikit-learn's initialisation (Glorot & Bengio): U(-b, b) for weights and biases.
        factor = 2.0 if activation == "sigmoid" else 6.0
        with torch.no_grad():
            for layer in self.linears():
                bound = math.sqrt(factor / (layer.in_features + layer.out_features))
                layer.weight.uniform_(-bound, bound)
                layer.bias.uniform_(-bound, bound)

    def linears(self) -> list[torch.nn.Linear]:
        return [m for m in self.layers if isinstance(m, torch.nn.Linear)]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.layers(X)


class _BaseMLP(NeuroMLEstimator):
    """Parameters, fitting and persistence shared by the MLP classifier and regressor."""

    _parameter_constraints: ClassVar[dict] = {
        "hidden_layer_sizes": [tuple, list, Interval(Integral, 1, None)],
        "activation": [Options(tuple(_ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, "left")],
        "dropout": [Interval(Real, 0, 1, "left")],
        "random_state": ["random_state"],
        "device": ["device"],
        **TRAINING_CONSTRAINTS,
    }
    _module_attributes: ClassVar[tuple[str, ...]] = ("module_",)
    #: Small problems in the conformance checks: few epochs, a larger step.
    _test_params: ClassVar[dict] = {
        "hidden_layer_sizes": (16,), "max_epochs": 20, "lr": 0.05, "batch_size": 100,
        "validation_fraction": 0.0, "random_state": 0, "device": "cpu",
    }

    def __init__(self, hidden_layer_sizes=(100,), *, activation="relu", alpha=1e-4, dropout=0.0,
                 max_epochs=200, batch_size=200, lr=1e-3, validation_fraction=0.1, patience=10,
                 optimizer="adam", verbose=False, device="auto", random_state=None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.alpha = alpha
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.optimizer = optimizer
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    # ------------------------------------------------------------------ pieces
    def _hidden(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ParameterError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be a "
                f"positive int or a sequence of positive ints. Got {self.hidden_layer_sizes!r} "
                "instead."
            )
        return tuple(int(s) for s in sizes)

    def _build_module(self) -> dict[str, torch.nn.Module]:
        """A fresh network shaped by the fitted attributes (for :func:`neuroml.load`)."""
        net = _MLPNet(self.n_features_in_, self._hidden(), self.n_outputs_, self.activation,
                      float(self.dropout))
        return {"module_": net}

    def _loss(self, module: _MLPNet, X: torch.Tensor, y: torch.Tensor):
        """Mean data loss plus scikit-learn's L2 penalty ``alpha / (2 n) sum ||W||^2``."""
        data = self._data_loss(module(X), y)
        if self.alpha == 0:
            return data
        squares = sum((layer.weight**2).sum() for layer in module.linears())
        penalty = (0.5 * self.alpha / X.shape[0]) * squares
        return data + penalty, {"penalty": penalty}

    def _fit(self, X, y_encoded: np.ndarray, stratify: np.ndarray | None):
        """Build the network and train it; ``y_encoded`` is what the loss compares to."""
        hidden = self._hidden()
        Xt = X
        dtype = Xt.dtype
        yt = to_tensor(y_encoded, self.device_)
        if yt.is_floating_point():
            yt = yt.to(dtype)
        seed = seed_from(self.random_state)
        split = self._split(Xt.shape[0], stratify, seed)
        with torch_seed(seed, self.device_):
            module = _MLPNet(Xt.shape[1], hidden, self.n_outputs_, self.activation,
                             float(self.dropout)).to(device=self.device_, dtype=dtype)
            trainer = Trainer(
                module, self._loss, max_epochs=self.max_epochs, batch_size=self.batch_size,
                lr=self.lr, optimizer=self.optimizer,
                validation_fraction=self.validation_fraction, patience=self.patience,
                verbose=self.verbose, seed=seed,
            )
            self.history_ = trainer.fit(Xt, yt, split=split)
        self.module_ = module.eval()
        self.n_iter_ = len(self.history_)
        self.best_epoch_ = int(trainer.best_epoch_)
        return self

    def _split(self, n: int, stratify, seed: int):
        """A stratified validation split for classifiers (None: the Trainer's random one)."""
        if stratify is None or self.validation_fraction == 0:
            return None
        counts = np.bincount(stratify)
        n_val = int(math.floor(self.validation_fraction * n))
        if counts.min() < 2 or n_val < len(counts) or n - n_val < len(counts):
            return None
        train, val = train_test_split(np.arange(n), test_size=n_val, stratify=stratify,
                                      random_state=seed % (2**32))
        return np.sort(train), np.sort(val)

    @torch.no_grad()
    def _forward(self, X) -> tuple[torch.Tensor, object]:
        """Network outputs for ``X`` (eval mode, chunks of rows) and the input's info."""
        self._check_fitted()
        Xt, _, info = self._validate_X(X, reset=False)
        weight = self.module_.linears()[0].weight
        Xt = Xt.to(device=weight.device, dtype=weight.dtype)
        self.module_.eval()
        out = torch.cat([self.module_(Xt[i : i + _PREDICT_CHUNK])
                         for i in range(0, Xt.shape[0], _PREDICT_CHUNK)])
        return out, info


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multi-layer perceptron classifier (scikit-learn's network, trained on the device).

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
        Width of each hidden layer.
    activation : {"relu", "tanh", "sigmoid", "gelu"}, default="relu"
    alpha : float, default=1e-4
        L2 penalty on the weights with scikit-learn's scaling: ``alpha / (2 n_batch) *
        sum ||W||^2`` is added to each minibatch's mean loss.
    dropout : float in [0, 1), default=0.0
        Dropout probability after each hidden activation (training only).
    max_epochs : int, default=200
    batch_size : int, default=200
    lr : float, default=1e-3
    validation_fraction : float in [0, 1), default=0.1
        Fraction held out (stratified by class) for early stopping; 0 trains on all
        samples and stops on the training loss.
    patience : int or None, default=10
        Epochs without improvement before stopping; None trains ``max_epochs``.
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    verbose : bool or int, default=False
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None
        Seeds initialisation, dropout, the validation split and the minibatch order:
        the same value gives the same numbers on the CPU.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_outputs_ : int
        Output units (1 for two classes, ``n_classes`` otherwise).
    module_ : torch.nn.Module
        The trained network (best validation epoch), in eval mode.
    history_ : pandas.DataFrame
        ``epoch, train_loss, val_loss, [train_penalty, val_penalty], seconds``; losses
        include the L2 penalty.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept.
    n_features_in_ : int
    device_ : torch.device

    Examples
    --------
    >>> from sklearn.datasets import make_moons
    >>> from neuroml import MLPClassifier
    >>> X, y = make_moons(300, noise=0.1, random_state=0)
    >>> clf = MLPClassifier((32,), lr=0.01, max_epochs=100, random_state=0, device="cpu")
    >>> clf.fit(X, y).score(X, y) > 0.95
    True
    """

    def fit(self, X, y):
        """Train the network.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels.

        Returns
        -------
        self
        """
        self._validate_params()
        self._resolve_device()
        if isinstance(y, torch.Tensor):
            y = to_numpy(y)
        Xt, y, _ = self._validate_X(X, y, reset=True)
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ParameterError(
                f"{type(self).__name__} needs samples of at least 2 classes; got 1 class "
                f"({classes[0]!r})."
            )
        self.classes_ = classes
        self.n_outputs_ = 1 if len(classes) == 2 else len(classes)
        return self._fit(Xt, encoded.astype(np.int64), stratify=encoded)

    def _data_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if logits.shape[1] == 1:
            return torch.nn.functional.binary_cross_entropy_with_logits(
                logits[:, 0], y.to(logits.dtype))
        return torch.nn.functional.cross_entropy(logits, y)

    def _proba(self, X) -> tuple[torch.Tensor, object]:
        logits, info = self._forward(X)
        if logits.shape[1] == 1:
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1), info
        return torch.softmax(logits, dim=1), info

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        proba : same type as X, shape (n_samples, n_classes)
            A DataArray has a ``class`` dimension with the class labels.
        """
        proba, info = self._proba(X)
        return self._wrap(info, proba, "class", self.classes_, device=self.device_)

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : shape (n_samples,)
            NumPy or a DataArray (sample coordinates kept) for those inputs; for a
            tensor input a tensor on ``device_`` when the labels are numeric, else a
            NumPy array.
        """
        proba, info = self._proba(X)
        best = proba.argmax(dim=1)
        if info.kind == "torch":
            if self.classes_.dtype.kind not in "biuf":
                return self.classes_[to_numpy(best)]
            return torch.as_tensor(self.classes_, device=best.device)[best]  # stays on device
        return self._wrap(info, self.classes_[to_numpy(best)], None, device=self.device_)

    def score(self, X, y, sample_weight=None):
        """Accuracy of ``predict(X)``.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        return float(accuracy_score(to_numpy(y), to_numpy(self.predict(X)),
                                    sample_weight=sample_weight))


class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multi-layer perceptron regressor (scikit-learn's network, trained on the device).

    Minimises half the mean squared error (over samples and targets, as scikit-learn)
    plus the L2 penalty; the output layer is linear. Targets are used as given (not
    standardised), as in scikit-learn.

    Parameters
    ----------
    hidden_layer_sizes : tuple of int, default=(100,)
    activation : {"relu", "tanh", "sigmoid", "gelu"}, default="relu"
    alpha : float, default=1e-4
        L2 penalty with scikit-learn's scaling (see :class:`MLPClassifier`).
    dropout : float in [0, 1), default=0.0
    max_epochs : int, default=200
    batch_size : int, default=200
    lr : float, default=1e-3
    validation_fraction : float in [0, 1), default=0.1
    patience : int or None, default=10
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    verbose : bool or int, default=False
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None

    Attributes
    ----------
    n_outputs_ : int
    module_ : torch.nn.Module
    history_ : pandas.DataFrame
    n_iter_ : int
    best_epoch_ : int
    output_dim_ : str
        Name of the target dimension of multi-output DataArray predictions.
    output_coords_ : ndarray or None
    n_features_in_ : int
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml import MLPRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-2, 2, size=(500, 1))
    >>> y = np.sin(2 * X[:, 0])
    >>> reg = MLPRegressor((64,), lr=0.01, max_epochs=150, random_state=0, device="cpu")
    >>> reg.fit(X, y).score(X, y) > 0.9
    True
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y):
        """Train the network.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)
        y : array-like or DataArray of shape (n_samples,) or (n_samples, n_targets)

        Returns
        -------
        self
        """
        import xarray as xr

        self._validate_params()
        self._resolve_device()
        output_dim, output_coords = "output", None
        if isinstance(y, xr.DataArray) and y.ndim == 2:
            output_dim = str(y.dims[-1])
            if y.dims[-1] in y.coords:
                output_coords = np.asarray(y.coords[y.dims[-1]].values)
        if isinstance(y, torch.Tensor):
            y = to_numpy(y)
        Xt, y, _ = self._validate_X(X, y, reset=True, y_numeric=True, multi_output=True)
        y = np.asarray(y, dtype=np.float64)
        self.output_dim_, self.output_coords_ = output_dim, output_coords
        self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        return self._fit(Xt, y.reshape(len(y), -1), stratify=None)

    def _data_loss(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((pred - y) ** 2).mean()

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)

        Returns
        -------
        y_pred : same type as X, shape (n_samples,) or (n_samples, n_targets)
            Shape (n_samples,) for a single target (as scikit-learn).
        """
        out, info = self._forward(X)
        if self.n_outputs_ == 1:
            return self._wrap(info, out[:, 0], None, device=self.device_)
        return self._wrap(info, out, self.output_dim_, self.output_coords_, device=self.device_)

    def score(self, X, y, sample_weight=None):
        """R^2 of ``predict(X)`` (uniform average over targets).

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
        sample_weight : array-like of shape (n_samples,), default=None

        Returns
        -------
        float
        """
        return float(r2_score(to_numpy(y), to_numpy(self.predict(X)),
                              sample_weight=sample_weight))
