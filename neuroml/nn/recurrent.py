"""Recurrent decoders (RNN, GRU, LSTM) of behaviour or labels from ``(trial, time, unit)`` data.

The networks of KordingLab's Neural_Decoding (SimpleRNN, GRU, LSTM), fitted on whole
trials instead of windows of history: a recurrent layer (or a stack) runs over each
trial's time bins and a linear readout maps its state to the target at every bin
(``output="sequence"``) or at the trial's last bin (``output="last"``).

**Causal by default.** With ``bidirectional=False`` the output at a time bin depends only
on that bin and the bins before it, so the decoder can run online. ``bidirectional=True``
adds a second network that runs backwards from each trial's last valid bin (offline
decoding; outputs then depend on the whole trial).

**Variable-length trials.** Shorter trials are NaN-padded at the end. Padded steps never
reach a valid step: the forward network meets them only after a trial's last valid bin,
and the backward network starts at each trial's own last valid bin (every trial is
reversed within its length, so no packing and no host synchronisation are needed).
They are left out of the loss, so they contribute nothing to the gradients, and they
are NaN in :meth:`RNNDecoder.predict`. A trial predicts the same on its valid steps
alone or in a padded batch (up to float rounding).

The networks compute in float32 (PyTorch's precision for recurrent layers).
"""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import torch

from .._validation import Interval, Options
from ._sequence_base import (
    SEQUENCE_CONSTRAINTS,
    _SequenceClassifier,
    _SequenceRegressor,
    last_step,
    xfail_checks,
)

__all__ = ["RNNDecoder", "RNNClassifier"]

_CELLS = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}


def reversal_index(lengths: torch.Tensor, n_times: int) -> torch.Tensor:
    """``(trial, time)`` indices that reverse each trial within its valid length.

    Index ``t`` maps to ``lengths[i] - 1 - t`` for ``t < lengths[i]`` and to itself on
    padded steps; applying it twice gives the identity.
    """
    t = torch.arange(n_times, device=lengths.device)[None]
    L = lengths[:, None]
    return torch.where(t < L, L - 1 - t, t)


class _RecurrentNet(torch.nn.Module):
    """Recurrent layers (optionally both directions) and a linear readout."""

    def __init__(self, cell: str, n_in: int, hidden_size: int, n_layers: int, n_out: int,
                 bidirectional: bool, dropout: float, last: bool):
        super().__init__()
        rnn = _CELLS[cell]
        self.bidirectional = bidirectional
        self.last = last
        between = dropout if n_layers > 1 else 0.0
        if bidirectional:
            sizes = [n_in] + [2 * hidden_size] * (n_layers - 1)
            self.forward_layers = torch.nn.ModuleList(
                rnn(n, hidden_size, 1, batch_first=True) for n in sizes)
            self.backward_layers = torch.nn.ModuleList(
                rnn(n, hidden_size, 1, batch_first=True) for n in sizes)
            self.between = torch.nn.Dropout(between)
        else:
            self.rnn = rnn(n_in, hidden_size, n_layers, batch_first=True, dropout=between)
        self.dropout = torch.nn.Dropout(dropout)
        self.readout = torch.nn.Linear(hidden_size * (2 if bidirectional else 1), n_out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.bidirectional:
            h, _ = self.rnn(x)
            if self.last:
                h = last_step(h, lengths)
            return self.readout(self.dropout(h))
        index = reversal_index(lengths, x.shape[1])[..., None]
        for i, (fwd, bwd) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i:
                x = self.between(x)
            f, _ = fwd(x)
            b, _ = bwd(x.gather(1, index.expand(-1, -1, x.shape[-1])))
            b = b.gather(1, index.expand(-1, -1, b.shape[-1]))
            x = torch.cat([f, b], -1)
        if self.last:  # forward state at the last valid bin, backward state at the first
            x = torch.cat([last_step(f, lengths), b[:, 0]], -1)
        return self.readout(self.dropout(x))


class _Recurrent:
    """Parameters and network shared by :class:`RNNDecoder` and :class:`RNNClassifier`."""

    _parameter_constraints: ClassVar[dict] = {
        "cell": [Options(tuple(_CELLS))],
        "hidden_size": [Interval(Integral, 1, None)],
        "n_layers": [Interval(Integral, 1, None)],
        "bidirectional": ["boolean"],
        **SEQUENCE_CONSTRAINTS,
    }
    #: Small problems for the common and conformance tests.
    _test_params: ClassVar[dict] = {"hidden_size": 8, "max_epochs": 3, "batch_size": 4,
                                    "random_state": 0, "device": "cpu"}

    def _step_work(self, n_trials: int, n_times: int, n_units: int) -> float:
        # one time step's gates: (trial, input + state) @ (input + state, 4 state)
        h = int(self.hidden_size)
        return n_trials * (max(n_units, 2 * h) + h) * 4 * h

    def _make_net(self, n_in: int, n_out: int) -> torch.nn.Module:
        return _RecurrentNet(self.cell, n_in, int(self.hidden_size), int(self.n_layers), n_out,
                             bool(self.bidirectional), float(self.dropout),
                             last=self.output == "last")


_PARAMS_DOC = """
    cell : {{"lstm", "gru", "rnn"}}, default="lstm"
        Recurrent unit: long short-term memory, gated recurrent unit, or an Elman
        network with tanh.
    hidden_size : int, default=64
        State size of each recurrent layer (per direction).
    n_layers : int, default=1
        Stacked recurrent layers.
    output : {{"sequence", "last"}}, default="{output}"
        ``"sequence"``: a {what} at every time bin (targets ``(trial, time)`` or
        ``(trial, time, k)``); ``"last"``: one per trial, read out at the trial's last
        valid bin (targets ``(trial,)``{last_k}).
    bidirectional : bool, default=False
        False (the default) is causal: the output at a bin uses only that bin and the
        bins before it. True adds a backward network (offline decoding).
    dropout : float in [0, 1), default=0.0
        Dropout on the outputs of every recurrent layer (training only).
    max_epochs : int, default=200
    batch_size : int, default=16
        Trials per minibatch: small minibatches give many optimiser steps per epoch on
        the few hundred trials of a session.
    lr : float, default=3e-3
        Adam's learning rate.
    weight_decay : float, default=0.0
        L2 penalty passed to the optimiser.
    optimizer : {{"adam", "adamw", "sgd"}}, default="adam"
    validation_fraction : float in [0, 1), default=0.1
        Fraction of whole trials held out for early stopping (at least one trial); 0
        trains on all trials and stops on the training loss.
    patience : int or None, default=20
        Epochs without improvement of the validation loss before stopping (the best
        weights are kept); None trains ``max_epochs``.
    verbose : bool or int, default=False
    device : str or torch.device, default="auto"
        CUDA when present, else the CPU.
    random_state : int, RandomState, Generator or None, default=None
        Seeds the initialisation, dropout, the validation split and the minibatch
        order: the same value gives the same numbers on the CPU."""

_ATTRS_DOC = """
    module_ : torch.nn.Module
        The trained network (best validation epoch), in eval mode.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Mean and standard deviation of each unit over the valid steps of the training
        trials (inputs are standardised with them).
    history_ : pandas.DataFrame
        ``epoch, train_loss, val_loss, seconds``: the mean loss over valid steps.
    n_iter_ : int
        Epochs run.
    best_epoch_ : int
        Epoch whose weights were kept.
    n_features_in_ : int
        Units.
    device_ : torch.device"""


class RNNDecoder(_Recurrent, _SequenceRegressor):
    __doc__ = f"""Recurrent decoder of continuous targets (behaviour) from ``(trial, time, unit)`` data.

    Inputs are standardised with the training trials' statistics; so are the targets
    (predictions are returned in the targets' units). The loss is half the mean squared
    error of the standardised targets over valid steps. See the module docstring for
    causality and variable-length trials.

    Parameters
    ----------{_PARAMS_DOC.format(output="sequence", what="prediction", last_k=" or (trial, k)")}

    Attributes
    ----------
    n_outputs_ : int
        Targets per step (or per trial).
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,)
        Mean and standard deviation of the targets over the training trials' valid steps.
    output_dim_ : str
        Name of the target dimension of multi-output DataArray predictions.
    output_coords_ : ndarray or None
    single_target_ : bool
        The target had no output axis (predictions then have none either).{_ATTRS_DOC}

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.nn.recurrent import RNNDecoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 30, 4))
    >>> y = np.cumsum(X[..., 0], axis=1) / 5      # behaviour integrates unit 0
    >>> dec = RNNDecoder(hidden_size=16, max_epochs=40, random_state=0, device="cpu")
    >>> dec.fit(X[:50], y[:50]).score(X[50:], y[50:]) > 0.9
    True
    """

    def __init__(self, cell="lstm", *, hidden_size=64, n_layers=1, output="sequence",
                 bidirectional=False, dropout=0.0, max_epochs=200, batch_size=16, lr=3e-3,
                 weight_decay=0.0, optimizer="adam", validation_fraction=0.1, patience=20,
                 verbose=False, device="auto", random_state=None):
        self.cell = cell
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.output = output
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    _xfail_checks: ClassVar[dict] = xfail_checks("RNNDecoder", classifier=False)

    def fit(self, X, y):
        """Train the network on whole trials.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)
            Shorter trials NaN-padded at the end (every unit NaN).
        y : array-like, DataArray, tensor or str
            ``output="sequence"``: (n_trials, n_times) or (n_trials, n_times, k) (values
            at padded steps are ignored); ``output="last"``: (n_trials,) or (n_trials, k),
            or the name of a trial coordinate of a DataArray ``X``.

        Returns
        -------
        self
        """
        return self._fit_sequences(X, y)


class RNNClassifier(_Recurrent, _SequenceClassifier):
    __doc__ = f"""Recurrent classifier of labels from ``(trial, time, unit)`` data.

    Same network as :class:`RNNDecoder` with a softmax readout trained by cross-entropy,
    averaged over the valid steps (``output="sequence"``) or over trials (``"last"``).
    The default is one label per trial (``output="last"``: e.g. the choice, read out at
    each trial's last valid bin); ``output="sequence"`` labels every time bin.

    Parameters
    ----------{_PARAMS_DOC.format(output="last", what="label", last_k="")}

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Labels seen in ``fit``.{_ATTRS_DOC}

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.nn.recurrent import RNNClassifier
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 80)
    >>> X = rng.normal(size=(80, 20, 3))
    >>> X[..., 0] += 0.5 * (2 * y[:, None] - 1)      # unit 0 fires more for label 1
    >>> clf = RNNClassifier(hidden_size=16, max_epochs=40, random_state=0, device="cpu")
    >>> clf.fit(X[:60], y[:60]).score(X[60:], y[60:]) > 0.9
    True
    """

    _default_output: ClassVar[str] = "last"

    def __init__(self, cell="lstm", *, hidden_size=64, n_layers=1, output="last",
                 bidirectional=False, dropout=0.0, max_epochs=200, batch_size=16, lr=3e-3,
                 weight_decay=0.0, optimizer="adam", validation_fraction=0.1, patience=20,
                 verbose=False, device="auto", random_state=None):
        self.cell = cell
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.output = output
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.verbose = verbose
        self.device = device
        self.random_state = random_state

    _xfail_checks: ClassVar[dict] = xfail_checks("RNNClassifier", classifier=True)

    def fit(self, X, y):
        """Train the network on whole trials.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)
            Shorter trials NaN-padded at the end (every unit NaN).
        y : array-like, DataArray, tensor or str
            ``output="last"``: (n_trials,) labels, or the name of a trial coordinate of a
            DataArray ``X`` (e.g. ``"choice"``); ``output="sequence"``: (n_trials,
            n_times) labels (values at padded steps are ignored), or a trial coordinate,
            whose label then holds at every bin of the trial.

        Returns
        -------
        self
        """
        return self._fit_sequences(X, y)
