"""The sampling of contrastive pairs: where samples sit in trials, positives, negatives.

:class:`ContrastiveEmbedding` (``contrastive.py``) owns the estimator and the loss; this
module owns which rows form a pair:

- :class:`SampleLayout`: where each flattened sample sits in its segment (a trial, or
  the whole series) and the window of rows the encoder sees around it;
- :func:`time_anchors`: the rows whose time positive stays inside their segment;
- :class:`PositiveSampler`: positives (by time offset, by label, or by nearest
  behaviour) and uniform negatives.

Random numbers are drawn from a seeded generator **on the CPU** and moved to the
device in one copy per draw, so the same ``random_state`` draws the same pairs on every
device (a CUDA generator gives another stream than the CPU's for the same seed, which
made GPU and CPU fits of one seed train on different pairs). The copies are a few
kilobytes per step.
"""

from __future__ import annotations

import torch

__all__ = ["SampleLayout", "time_anchors", "PositiveSampler"]


def time_anchors(segment: torch.Tensor, offset: int) -> torch.Tensor:
    """Rows whose positive, ``offset`` rows later, lies in the same segment.

    Parameters
    ----------
    segment : torch.Tensor of shape (n,)
        Labels of each row's contiguous piece (a trial; a side of the train/validation
        cut), so positives never cross trials.
    offset : int

    Returns
    -------
    rows : torch.Tensor of shape (n_anchors,), on ``segment``'s device
    """
    n = segment.numel()
    rows = torch.arange(n, device=segment.device)
    ok = rows + offset < n
    ok[ok.clone()] = segment[rows[ok] + offset] == segment[rows[ok]]
    return torch.nonzero(ok).squeeze(1)


class SampleLayout:
    """Where each flattened sample sits in its segment (a trial, or the whole series).

    Parameters
    ----------
    shape : tuple of int
        ``(trial, time)`` for trial-structured input, ``(n_samples,)`` for one series.
    device : torch.device
    """

    def __init__(self, shape: tuple[int, ...], device: torch.device):
        if len(shape) == 2:
            n_seg, length = shape
            rows = torch.arange(n_seg * length, device=device)
            self.pos = rows % length
            self.start = rows - self.pos
            self.length = torch.full_like(rows, length)
        else:
            n = shape[0]
            self.pos = torch.arange(n, device=device)
            self.start = torch.zeros_like(self.pos)
            self.length = torch.full_like(self.pos, n)
        self.n = self.pos.numel()

    def windows(self, window: int) -> torch.Tensor:
        """(n, window) row indices of each sample's window, edge-replicated within segments."""
        left = (window - 1) // 2
        k = torch.arange(window, device=self.pos.device) - left
        p = (self.pos[:, None] + k[None, :]).clamp(min=0)
        p = torch.minimum(p, self.length[:, None] - 1)
        return self.start[:, None] + p


class PositiveSampler:
    """Positives and uniform negatives for InfoNCE, drawn from a seeded CPU generator.

    Parameters
    ----------
    positive : {"time", "behavior"}
    time_offset : int
        Offset of the time positive, in rows.
    pools : (train_rows, val_rows)
        The rows references, positives and negatives are drawn from, per pool
        (``which=0`` training, ``which=1`` validation).
    labels : torch.Tensor of shape (n,) or None
        Integer codes of discrete behaviour.
    values : torch.Tensor of shape (n, n_variables) or None
        Standardised continuous behaviour.
    delta : float
        Gaussian jitter of the continuous query, in standard deviations.
    seed : int
    device : torch.device
        Where the rows are returned.
    """

    def __init__(self, positive, time_offset, pools, labels, values, delta, seed, device):
        self.positive = positive
        self.time_offset = time_offset
        self.pools = pools
        self.values = values
        self.delta = delta
        self.gen = torch.Generator().manual_seed(seed)
        self.device = device
        self.groups = []
        if labels is not None:
            n_classes = int(labels.max()) + 1
            for rows in pools:
                lab = labels[rows]
                order = torch.argsort(lab, stable=True)
                counts = torch.bincount(lab, minlength=n_classes)
                starts = torch.cumsum(counts, 0) - counts
                self.groups.append((rows[order], starts, counts))
        self.labels = labels

    def _draw(self, make) -> torch.Tensor:
        """``make(generator)`` on the CPU, moved to the device in one copy."""
        return make(self.gen).to(self.device)

    def negatives(self, n: int, which: int) -> torch.Tensor:
        """``n`` rows drawn uniformly (with replacement) from pool ``which``."""
        rows = self.pools[which]
        return rows[self._draw(lambda g: torch.randint(rows.numel(), (n,), generator=g))]

    def positives(self, ref: torch.Tensor, which: int) -> torch.Tensor:
        """One positive row per reference row in ``ref``."""
        if self.positive == "time":
            return ref + self.time_offset
        if self.labels is not None:
            sorted_rows, starts, counts = self.groups[which]
            lab = self.labels[ref]
            u = self._draw(lambda g: torch.rand(ref.numel(), generator=g))
            pick = (u * counts[lab]).long().clamp_max(counts[lab] - 1)
            return sorted_rows[starts[lab] + pick]
        rows = self.pools[which]
        query = self.values[ref]
        noise = self._draw(lambda g: torch.randn(query.shape, generator=g)).to(query.dtype)
        query = query + self.delta * noise
        nearest = torch.cdist(query, self.values[rows]).argmin(1)
        return rows[nearest]
