"""A temporal convolutional decoder: causal dilated 1-D convolutions over time.

The units of a ``(trial, time, unit)`` recording are the input channels of a stack of
1-D convolutions over time (a temporal convolutional network, Bai, Kolter & Koltun
2018). Layer ``l`` (from 0) has dilation ``2**l``, so ``n_layers`` layers of width
``kernel_size`` see a window of ``1 + (kernel_size - 1) (2**n_layers - 1)`` bins (31 with
the defaults). Every layer is padded on the left only, so the decoder is **causal**: the
output at a time bin depends only on that bin and the bins before it, and NaN padding
at the end of a trial cannot reach a valid step. Layers after the first are residual
(``h + ReLU(conv(h))``); a linear readout maps each bin's features to the targets.

Same interface as :class:`neuroml.nn.recurrent.RNNDecoder`: standardised inputs and
targets, padded steps masked out of the loss and NaN in :meth:`ConvDecoder.predict`,
whole trials held out for early stopping. The network computes in float32.
"""

from __future__ import annotations

from numbers import Integral
from typing import ClassVar

import torch

from .._validation import Interval
from ._sequence_base import SEQUENCE_CONSTRAINTS, _SequenceRegressor, last_step, xfail_checks

__all__ = ["ConvDecoder"]


class _CausalConvNet(torch.nn.Module):
    """Causal dilated convolutions (units as channels), residual from layer 1, readout."""

    def __init__(self, n_in: int, channels: int, kernel_size: int, n_layers: int, n_out: int,
                 dropout: float, last: bool):
        super().__init__()
        self.kernel_size = kernel_size
        self.last = last
        self.convs = torch.nn.ModuleList(
            torch.nn.Conv1d(n_in if i == 0 else channels, channels, kernel_size,
                            dilation=2**i) for i in range(n_layers))
        self.dropout = torch.nn.Dropout(dropout)
        self.readout = torch.nn.Linear(channels, n_out)

    def receptive_field(self) -> int:
        """Time bins each output sees (the current one included)."""
        return 1 + (self.kernel_size - 1) * (2 ** len(self.convs) - 1)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)                                  # (trial, unit, time)
        for i, conv in enumerate(self.convs):
            left = (self.kernel_size - 1) * conv.dilation[0]
            out = self.dropout(torch.relu(conv(torch.nn.functional.pad(h, (left, 0)))))
            h = out if i == 0 else h + out
        h = h.transpose(1, 2)                                  # (trial, time, channel)
        if self.last:
            h = last_step(h, lengths)
        return self.readout(h)


class ConvDecoder(_SequenceRegressor):
    """Temporal convolutional decoder of continuous targets from ``(trial, time, unit)`` data.

    Causal: the output at a bin depends only on the ``receptive_field_`` bins up to and
    including it (see the module docstring for the network).

    Parameters
    ----------
    channels : int, default=64
        Feature channels of every convolutional layer.
    kernel_size : int, default=3
        Width of each convolution (>= 2).
    n_layers : int, default=4
        Convolutional layers; layer ``l`` has dilation ``2**l``.
    output : {"sequence", "last"}, default="sequence"
        ``"sequence"``: a prediction at every time bin (targets ``(trial, time)`` or
        ``(trial, time, k)``); ``"last"``: one per trial, read out at its last valid bin
        (targets ``(trial,)`` or ``(trial, k)``).
    dropout : float in [0, 1), default=0.0
        Dropout after every convolution (training only).
    max_epochs : int, default=200
    batch_size : int, default=16
        Trials per minibatch.
    lr : float, default=3e-3
        Adam's learning rate.
    weight_decay : float, default=0.0
    optimizer : {"adam", "adamw", "sgd"}, default="adam"
    validation_fraction : float in [0, 1), default=0.1
        Fraction of whole trials held out for early stopping (at least one trial).
    patience : int or None, default=20
    verbose : bool or int, default=False
    device : str or torch.device, default="auto"
    random_state : int, RandomState, Generator or None, default=None

    Attributes
    ----------
    receptive_field_ : int
        Time bins each output depends on: ``1 + (kernel_size - 1) (2**n_layers - 1)``.
    n_outputs_ : int
    target_mean_, target_scale_ : ndarray of shape (n_outputs_,)
    output_dim_ : str
    output_coords_ : ndarray or None
    single_target_ : bool
        The target had no output axis (predictions then have none either).
    module_ : torch.nn.Module
        The trained network (best validation epoch), in eval mode.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Standardisation of the units (training trials' valid steps).
    history_ : pandas.DataFrame
        ``epoch, train_loss, val_loss, seconds``.
    n_iter_ : int
    best_epoch_ : int
    n_features_in_ : int
    device_ : torch.device

    Examples
    --------
    >>> import numpy as np
    >>> from neuroml.nn.temporal_conv import ConvDecoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(60, 40, 4))
    >>> y = X[..., 0] + np.roll(X[..., 1], 3, axis=1)   # unit 1 acts 3 bins later
    >>> y[:, :3] = X[:, :3, 0]
    >>> dec = ConvDecoder(channels=16, max_epochs=60, random_state=0, device="cpu")
    >>> dec.fit(X[:50], y[:50]).score(X[50:], y[50:]) > 0.9
    True
    """

    _parameter_constraints: ClassVar[dict] = {
        "channels": [Interval(Integral, 1, None)],
        "kernel_size": [Interval(Integral, 2, None)],
        "n_layers": [Interval(Integral, 1, None)],
        **SEQUENCE_CONSTRAINTS,
    }
    _test_params: ClassVar[dict] = {"channels": 8, "n_layers": 2, "max_epochs": 3,
                                    "batch_size": 4, "random_state": 0, "device": "cpu"}
    _xfail_checks: ClassVar[dict] = xfail_checks("ConvDecoder", classifier=False)

    def __init__(self, channels=64, *, kernel_size=3, n_layers=4, output="sequence",
                 dropout=0.0, max_epochs=200, batch_size=16, lr=3e-3, weight_decay=0.0,
                 optimizer="adam", validation_fraction=0.1, patience=20, verbose=False,
                 device="auto", random_state=None):
        self.channels = channels
        self.kernel_size = kernel_size
        self.n_layers = n_layers
        self.output = output
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

    def _step_work(self, n_trials: int, n_times: int, n_units: int) -> float:
        # one convolution: (trial * time, channels * kernel) @ (channels * kernel, channels)
        c = int(self.channels)
        return n_trials * n_times * max(c, n_units) * int(self.kernel_size) * c

    def _make_net(self, n_in: int, n_out: int) -> torch.nn.Module:
        return _CausalConvNet(n_in, int(self.channels), int(self.kernel_size),
                              int(self.n_layers), n_out, float(self.dropout),
                              last=self.output == "last")

    def fit(self, X, y):
        """Train the network on whole trials.

        Parameters
        ----------
        X : array-like, DataArray or torch.Tensor of shape (n_trials, n_times, n_units)
            Shorter trials NaN-padded at the end (every unit NaN).
        y : array-like, DataArray, tensor or str
            ``output="sequence"``: (n_trials, n_times) or (n_trials, n_times, k);
            ``output="last"``: (n_trials,) or (n_trials, k), or a trial coordinate of a
            DataArray ``X``.

        Returns
        -------
        self
        """
        self._fit_sequences(X, y)
        self.receptive_field_ = int(self.module_.receptive_field())
        return self
