"""The one training loop (neuroml.training.Trainer)."""

from __future__ import annotations

import copy
import io

import numpy as np
import pandas as pd
import pytest
import torch

from neuroml.errors import ParameterError
from neuroml.training import Trainer, _Progress, fused_adam_supported


def regression_data(n=200, p=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=g, dtype=torch.float64)
    y = X @ torch.arange(1.0, p + 1, dtype=torch.float64)[:, None] + 0.1 * torch.randn(
        n, 1, generator=g, dtype=torch.float64)
    return X, y


def linear(p=5, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(p, 1).double()


def mse(module, xb, yb):
    return torch.nn.functional.mse_loss(module(xb), yb)


def test_history_columns_and_dtypes():
    X, y = regression_data()
    hist = Trainer(linear(), mse, max_epochs=4, batch_size=32, seed=0).fit(X, y)
    assert list(hist.columns) == ["epoch", "train_loss", "val_loss", "seconds"]
    assert hist["epoch"].tolist() == [1, 2, 3, 4]
    assert hist["epoch"].dtype == np.int64
    for col in ("train_loss", "val_loss", "seconds"):
        assert hist[col].dtype == np.float64
    assert (hist["seconds"] > 0).all() and hist["val_loss"].notna().all()
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]


def test_epoch_loss_is_the_sample_weighted_mean_of_batch_losses():
    """Unequal batches (10 samples, batch 4: 4 + 4 + 2) are weighted by their size."""
    X = torch.arange(10.0, dtype=torch.float64)[:, None]
    module = torch.nn.Linear(1, 1).double()
    torch.nn.init.zeros_(module.weight)
    torch.nn.init.zeros_(module.bias)

    def loss_fn(m, xb):
        return xb.mean() + 0 * m.weight.sum()  # independent of the parameters

    hist = Trainer(module, loss_fn, max_epochs=1, batch_size=4, lr=1e-3,
                   validation_fraction=0.0, seed=0).fit(X)
    assert hist["train_loss"].iloc[0] == pytest.approx(4.5, rel=1e-12)  # mean of 0..9


def test_extra_loss_terms_recorded_as_train_and_val_columns():
    X, y = regression_data(100)

    def loss_fn(m, xb, yb):
        recon = torch.nn.functional.mse_loss(m(xb), yb)
        kl = xb[:, 0].mean()  # a term with a known per-split mean
        return recon + 0 * kl, {"recon": recon, "kl": kl}

    split = (np.arange(70), np.arange(70, 100))
    hist = Trainer(linear(), loss_fn, max_epochs=3, batch_size=16, seed=0).fit(X, y, split=split)
    assert list(hist.columns) == ["epoch", "train_loss", "val_loss", "train_recon", "train_kl",
                                  "val_recon", "val_kl", "seconds"]
    np.testing.assert_allclose(hist["train_kl"], X[:70, 0].mean().item(), rtol=1e-12)
    np.testing.assert_allclose(hist["val_kl"], X[70:, 0].mean().item(), rtol=1e-12)
    np.testing.assert_allclose(hist["val_recon"], hist["val_loss"], rtol=1e-12)


class _Recorder(Trainer):
    """Snapshots the weights whenever the validation loss is computed."""

    def run_epoch(self, data, index, *, train, opt=None):
        out = super().run_epoch(data, index, train=train, opt=opt)
        if not train:
            self.snapshots.append((out["loss"], copy.deepcopy(self.module.state_dict())))
        return out


def test_early_stopping_stops_on_patience_and_restores_best_weights():
    """Train on y = x, validate on y = 0.5 x: validation improves, then worsens."""
    x = torch.linspace(-1, 1, 40, dtype=torch.float64)[:, None]
    y = torch.where(torch.arange(40)[:, None] < 30, x, 0.5 * x)
    module = torch.nn.Linear(1, 1, bias=False).double()
    torch.nn.init.zeros_(module.weight)
    trainer = _Recorder(module, mse, max_epochs=200, batch_size=30, lr=0.05, optimizer="sgd",
                        patience=4, tol=0.0, seed=0)
    trainer.snapshots = []
    hist = trainer.fit(x, y, split=(np.arange(30), np.arange(30, 40)))
    val = [loss for loss, _ in trainer.snapshots]
    best = int(np.argmin(val)) + 1
    assert 1 < best < len(hist) < 200  # a genuine minimum, then stopped early
    assert trainer.best_epoch_ == best
    assert len(hist) == best + 4  # patience epochs after the best
    np.testing.assert_allclose(hist["val_loss"], val, rtol=1e-12)
    best_weights = trainer.snapshots[best - 1][1]
    assert torch.equal(module.weight, best_weights["weight"])
    assert not torch.equal(module.weight, trainer.snapshots[-1][1]["weight"])
    assert 0.3 < module.weight.item() < 0.7  # near the validation optimum 0.5
    assert not module.training


def test_validation_fraction_zero_trains_on_everything():
    X, y = regression_data(50)
    seen = set()

    def loss_fn(m, xb, yb):
        seen.update(xb[:, 0].tolist())
        return mse(m, xb, yb)

    trainer = Trainer(linear(), loss_fn, max_epochs=3, batch_size=16, validation_fraction=0.0,
                      seed=0)
    hist = trainer.fit(X, y)
    assert hist["val_loss"].isna().all()
    assert len(seen) == 50
    assert trainer.best_epoch_ == 3  # the last weights are kept


def test_validation_split_sizes():
    trainer = Trainer(linear(), mse, validation_fraction=0.2, seed=0)
    trainer._generator = torch.Generator().manual_seed(0)
    train, val = trainer.split(100, torch.device("cpu"))
    assert len(val) == 20 and len(train) == 80
    assert sorted(torch.cat([train, val]).tolist()) == list(range(100))


def test_patience_on_training_loss_without_validation():
    X, y = regression_data(64)

    def constant(m, xb, yb):
        return (m.weight * 0).sum() + 1.0  # never improves

    hist = Trainer(linear(), constant, max_epochs=50, patience=3, validation_fraction=0.0,
                   seed=0).fit(X, y)
    assert len(hist) == 4  # epoch 1 sets the best, then 3 epochs without improvement
    full = Trainer(linear(), constant, max_epochs=6, patience=None, seed=0).fit(X, y)
    assert len(full) == 6


def test_same_seed_same_history_and_weights():
    X, y = regression_data()
    runs = []
    for _ in range(2):
        module = linear(seed=1)
        torch.manual_seed(99)
        hist = Trainer(module, mse, max_epochs=5, batch_size=16, seed=7).fit(X, y)
        runs.append((hist, module))
    pd.testing.assert_frame_equal(runs[0][0].drop(columns="seconds"),
                                  runs[1][0].drop(columns="seconds"))
    assert torch.equal(runs[0][1].weight, runs[1][1].weight)
    other = linear(seed=1)
    hist = Trainer(other, mse, max_epochs=5, batch_size=16, seed=8).fit(X, y)
    assert not np.array_equal(hist["train_loss"], runs[0][0]["train_loss"])


def test_verbose_plain_lines_when_not_a_tty(capsys):
    X, y = regression_data(40)
    Trainer(linear(), mse, max_epochs=3, verbose=True, seed=0).fit(X, y)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 3 and "\r" not in err
    assert lines[0].startswith("epoch 1/3 train_loss=") and "val_loss=" in lines[0]
    Trainer(linear(), mse, max_epochs=2, verbose=False, seed=0).fit(X, y)
    assert capsys.readouterr().err == ""


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_tty_is_tqdm_with_the_losses():
    from tqdm.std import tqdm

    stream = _Tty()
    bar = _Progress(4, stream=stream)
    assert isinstance(bar.bar, tqdm)
    for epoch in (1, 2):
        bar.update(epoch, {"train_loss": 0.5, "val_loss": float("nan")})
    bar.close()
    text = stream.getvalue()
    last = text.rstrip("\n").split("\r")[-1]
    assert "\r" in text and text.endswith("\n") and text.count("\n") == 1
    assert last.startswith("epoch:  50%") and "2/4" in last and "train_loss=0.5" in last
    assert "val_loss" not in text


def test_progress_in_a_notebook_is_a_bar_not_lines(monkeypatch):
    import sys

    stream = io.StringIO()  # a kernel's stderr is no terminal, but tqdm.auto draws a widget
    monkeypatch.setattr("sys.stderr", stream)
    assert _Progress(3).bar is None
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    bar = _Progress(3)
    assert bar.bar is not None
    bar.close()
    assert _Progress(3, stream=io.StringIO()).bar is None  # another stream: plain lines


def test_verbose_trainer_on_a_tty_shows_every_epoch_count_and_the_last_losses(monkeypatch):
    stream = _Tty()
    monkeypatch.setattr("sys.stderr", stream)
    X, y = regression_data(40)
    hist = Trainer(linear(), mse, max_epochs=3, verbose=True, seed=0).fit(X, y)
    last = stream.getvalue().rstrip("\n").split("\r")[-1]
    assert last.startswith("epoch: 100%") and "3/3" in last
    assert f"train_loss={hist['train_loss'].iloc[-1]:.4g}" in last
    assert f"val_loss={hist['val_loss'].iloc[-1]:.4g}" in last


def test_divergence_is_a_clear_error():
    X, y = regression_data(40)

    def exploding(m, xb, yb):
        return mse(m, xb, yb) * float("nan")

    with pytest.raises(ParameterError, match=r"Training diverged at epoch 1 \(loss nan\); "
                                             r"lower 'lr'"):
        Trainer(linear(), exploding, max_epochs=5, seed=0).fit(X, y)


def test_minibatches_are_index_tensors_on_the_data_device():
    X, y = regression_data(103)
    batches = []

    class Spy(Trainer):
        def batches(self, index, shuffle):
            for idx in super().batches(index, shuffle):
                batches.append((idx, shuffle))
                yield idx

    received = []

    def loss_fn(m, xb, yb):
        received.append((type(xb), xb.shape[0], xb.device))
        return mse(m, xb, yb)

    trainer = Spy(linear(), loss_fn, max_epochs=2, batch_size=25, validation_fraction=0.2,
                  seed=0)
    trainer.fit(X, y)
    train_batches = [b for b, shuffle in batches if shuffle]
    for idx, _ in batches:
        assert isinstance(idx, torch.Tensor) and idx.dtype == torch.long
        assert idx.device == X.device and idx.ndim == 1
    assert all(t is torch.Tensor and dev == X.device for t, _, dev in received)
    sizes = [b.numel() for b in train_batches]
    assert sizes == [25, 25, 25, 8] * 2  # 83 training samples per epoch, in 4 batches
    epoch1 = torch.cat(train_batches[:4]).tolist()
    epoch2 = torch.cat(train_batches[4:]).tolist()
    assert sorted(epoch1) == sorted(epoch2) and len(set(epoch1)) == 83
    assert epoch1 != epoch2  # reshuffled each epoch


@pytest.mark.parametrize("optimizer, cls", [("adam", torch.optim.Adam),
                                            ("adamw", torch.optim.AdamW),
                                            ("sgd", torch.optim.SGD)])
def test_optimizers(optimizer, cls):
    trainer = Trainer(linear(), mse, optimizer=optimizer, lr=0.01, weight_decay=0.1)
    opt = trainer.make_optimizer()
    assert isinstance(opt, cls)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[0]["weight_decay"] == 0.1
    if optimizer != "sgd":
        assert opt.defaults["fused"] == fused_adam_supported(list(trainer.module.parameters()))


def test_fused_adam_support_rules():
    cpu = [torch.zeros(2, requires_grad=True)]
    version = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2])
    assert fused_adam_supported(cpu) == (version >= (2, 4))
    assert not fused_adam_supported([])
    assert not fused_adam_supported([torch.zeros(2, dtype=torch.int64)])
    assert not fused_adam_supported([torch.zeros(2, device="meta")])


def test_bad_optimizer_and_no_data():
    with pytest.raises(ParameterError, match="'optimizer' parameter must be a str among"):
        Trainer(linear(), mse, optimizer="rmsprop").make_optimizer()
    with pytest.raises(ParameterError, match="needs at least one data tensor"):
        Trainer(linear(), mse).fit()


def test_nan_validation_loss_never_counts_as_best():
    X, y = regression_data(60)

    def loss_fn(m, xb, yb):
        loss = mse(m, xb, yb)
        return loss if m.training else loss * float("nan")

    trainer = Trainer(linear(), loss_fn, max_epochs=20, patience=3, seed=0)
    hist = trainer.fit(X, y)
    assert hist["val_loss"].isna().all() and len(hist) == 3
    assert trainer.best_epoch_ == 3  # no best validation epoch: the last weights are kept


def test_max_grad_norm_scales_the_step_down_to_that_norm():
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    y = 100 * torch.randn(8, 1)  # a large gradient

    def loss_fn(module, xb, yb):
        return ((module(xb) - yb) ** 2).mean()

    steps = {}
    for clip in (None, 0.5):
        net = torch.nn.Linear(4, 1)
        before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
        Trainer(net, loss_fn, max_epochs=1, batch_size=8, lr=0.1, optimizer="sgd",
                validation_fraction=0.0, max_grad_norm=clip).fit(x, y)
        after = torch.cat([p.detach().flatten() for p in net.parameters()])
        steps[clip] = float((after - before).norm())
    # plain SGD's first step is lr * gradient (the momentum buffer starts at the gradient)
    assert steps[0.5] == pytest.approx(0.1 * 0.5, rel=1e-5)
    assert steps[None] > 10 * steps[0.5]


def test_lr_decay_on_a_plateau_of_the_monitored_loss():
    net = torch.nn.Linear(2, 1)
    seen = []

    class Recording(Trainer):
        def make_optimizer(self):
            opt = super().make_optimizer()
            seen.append(opt)
            return opt

    def flat(module, xb):  # never improves after the first epoch
        return 0.0 * module(xb).sum() + 1.0

    trainer = Recording(net, flat, max_epochs=11, lr=1.0, validation_fraction=0.0,
                        patience=None, lr_decay=0.5)
    trainer.fit(torch.randn(10, 2))
    # epochs 2-6 and 7-11 without improvement: two decays after max(1, 10 // 2) = 5 each
    assert seen[0].param_groups[0]["lr"] == pytest.approx(0.25)
    fixed = Recording(torch.nn.Linear(2, 1), flat, max_epochs=11, lr=1.0,
                      validation_fraction=0.0, patience=None)
    fixed.fit(torch.randn(10, 2))
    assert seen[1].param_groups[0]["lr"] == 1.0
