"""Batched solvers for penalised multinomial logistic regression.

One call solves a whole grid of independent problems with the same tensor operations:
all folds x all regularisation strengths of a cross-validation, all time bins x folds
of a time-resolved decoding, all label permutations of a permutation test.

Problem layout
--------------
Problems form a ``(G, M)`` grid. The ``G`` groups have their own data ``X[g]`` of shape
``(n, F)`` (time bins); the ``M`` problems of a group share that data and differ in
their sample weights (folds are weight masks: 0 = held out), targets (permutations) and
``C`` (the regularisation path). Internally parameters are laid out problem-major,
``(G, M, K, F + 1)``, and logits samples-last, ``(G, M, K, n)``: the forward pass of
every problem of a group is one matrix product ``W[g] @ X[g]^T`` with ``W[g]`` of shape
``(M * K, F)``, the softmax over classes runs across contiguous rows of samples (it
vectorises whatever ``K``), and per-problem inner products are over contiguous memory.

Objective (scikit-learn's, so the same ``C`` gives the same solution)
----------------------------------------------------------------------
For each problem, with sample weights ``s`` (class weights folded in) and
``S = sum(s)``::

    l2:   (1 / S) * [ sum_i s_i * loss_i(W, b) + 1 / (2 C) * ||W||_F^2 ]
    l1:   (1 / S) * [ sum_i s_i * loss_i(W, b) + 1 / C * ||W||_1 ]
    None: (1 / S) *   sum_i s_i * loss_i(W, b)

The intercept ``b`` is never penalised. This is exactly what
``sklearn.linear_model.LogisticRegression`` (1.9) minimises: its lbfgs path uses
``LinearModelLoss`` with ``l2_reg_strength = 1 / (C * sum(s))`` (mean loss plus
penalty), i.e. ``C * sum(loss) + penalty`` divided by ``C * S``.
``loss_i`` is the multinomial cross-entropy with one column per class when there are
three or more classes, and the binomial loss on a single logit (class 1 against
class 0) for two classes — the same parametrisation as scikit-learn, whose binary
``coef_`` has one row. The gradient that the tolerance is compared with is the
gradient of this scaled objective, as in scikit-learn's ``gtol``.

Algorithms
----------
- ``l2`` / ``None``: L-BFGS with a batched two-loop recursion, preconditioned by a
  fixed approximation of the Hessian (the centred Gram matrix of each group's data
  times the curvature of the loss at uniform probabilities, plus the penalty), and a
  per-problem backtracking Armijo line search. The line search costs no matrix
  product: logits are linear in the step, ``Z(t) = Z + t * X d``.
- ``l1``: FISTA (accelerated proximal gradient) with per-problem backtracking
  Lipschitz estimates and adaptive momentum restart. Convergence is declared on the
  gradient mapping, the proximal analogue of the gradient.

Converged problems are dropped from the batch as the solve goes on, so the cost is
the sum of the problems' iterations, not the slowest problem's iterations times the
batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .._parallel import available_threads, is_single, run_blocks, threads_for
from ..device import to_numpy

__all__ = ["LogisticSolution", "solve_logistic", "prepare_data", "one_hot", "logits"]


@dataclass
class LogisticSolution:
    """Result of :func:`solve_logistic`.

    Attributes
    ----------
    coef : torch.Tensor of shape (G, M, Kp, F)
        Weights; ``Kp`` is 1 for binary problems, else the number of classes.
    intercept : torch.Tensor of shape (G, M, Kp)
        Intercepts (zeros when ``fit_intercept=False``).
    n_iter : torch.Tensor of shape (G, M), int64
        Iterations each problem took.
    converged : torch.Tensor of shape (G, M), bool
        Whether the tolerance was reached within ``max_iter``.
    pinv : torch.Tensor or None
        The preconditioner the solve set up (for a follow-up solve of the same
        problems), when it used one.
    """

    coef: torch.Tensor
    intercept: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor
    pinv: torch.Tensor | None = None


def one_hot(codes: torch.Tensor, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    """One-hot encode integer class codes along a new last axis."""
    return torch.nn.functional.one_hot(codes.long(), n_classes).to(dtype)


class PreparedData:
    """Per-group data statistics reused across solves on the same ``X``.

    Attributes
    ----------
    X : torch.Tensor of shape (G, n, F)
    mean : torch.Tensor of shape (G, F)
        Column means (zeros without an intercept).
    gram : torch.Tensor of shape (G, F, F)
        The centred (uncentred without an intercept) second moment
        ``(X - mean)^T (X - mean) / n``; only its lower triangle is filled in
        reliably. It only shapes the preconditioner, so it is formed (and kept) in
        float32 whenever the data fit float32's range.
    fit_intercept : bool
    """

    def __init__(self, X, mean, fit_intercept, gram=None, eig=None, low=None, source=None):
        self.X, self.mean, self.fit_intercept = X, mean, fit_intercept
        self._gram = gram
        self._eig = eig
        self._low = low
        self._source = source  # the statistics this float32 copy shares

    @property
    def gram(self) -> torch.Tensor:
        """The centred second moment, computed on first use."""
        if self._gram is None:
            self._gram = self._source.gram if self._source is not None else _gram(self)
        elif callable(self._gram):  # computed by blocks of groups, assembled when needed
            self._gram = self._gram()
        return self._gram

    def eig(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eigenvalues (G, F) and eigenvectors (G, F, F) of ``gram`` (computed once),
        the eigenvectors in float32 (they only shape the preconditioner)."""
        if self._eig is None:
            if self._source is not None:
                evals, evecs = self._source.eig()
            else:
                evals, evecs = torch.linalg.eigh(self.gram.to(torch.float64))
                evals = evals.clamp_min(0)
            self._eig = (evals.to(self.X.dtype), evecs.to(torch.float32))
        return self._eig

    def low(self) -> PreparedData | None:
        """The same statistics over a float32 copy of ``X`` (made once); None when the
        data do not fit in float32's range."""
        if self.X.dtype == torch.float32:
            return self
        if self._low is None:
            X32 = self.X.to(torch.float32)
            # a finite sum means finite entries (one cheap reduction instead of a mask)
            if not bool(torch.isfinite(X32.sum())) and not bool(torch.isfinite(X32).all()):
                self._low = False  # out of float32's range
            else:
                self._low = PreparedData(X32, self.mean.to(torch.float32), self.fit_intercept,
                                         source=self)
        return self._low or None

    def take_groups(self, idx, stats: bool = True) -> PreparedData:
        """The statistics of the groups ``idx`` (an index tensor or a slice).

        With ``stats=False`` only ``X`` and ``mean`` are kept (what an iteration uses
        once the preconditioner is set up), so that dropping finished groups copies
        no more than it must. Statistics not computed yet stay lazy in the result.
        """
        if not stats:
            return PreparedData(self.X[idx], self.mean[idx], self.fit_intercept)
        gram = None if self._gram is None else self.gram[idx]
        eig = None if self._eig is None else (self._eig[0][idx], self._eig[1][idx])
        part = PreparedData(self.X[idx], self.mean[idx], self.fit_intercept, gram, eig)
        if self._low:
            part._low = PreparedData(self._low.X[idx], self._low.mean[idx], self.fit_intercept,
                                     source=part)
        elif self._low is False:
            part._low = False
        return part


def _gram(data: PreparedData) -> torch.Tensor:
    """``(X - mean)^T (X - mean) / n`` per group, in float32 (float64 beyond its range).

    Formed from the float32 copy of the data: twice the speed of float64 products and
    accurate far beyond what a preconditioner needs (centring first avoids the
    cancellation of ``X^T X / n - mean mean^T``). The groups are centred a few at a
    time, so no centred copy of the whole data is made: on the CPU every fresh page of
    a large temporary costs a page fault (about 3 us per 4 KiB on the development
    machine, as much as the product itself here). Only the lower triangle is meant to
    be read (Cholesky and ``eigh`` read no other).
    """
    base = data.low() or data
    gram = _centred_products(base.X, base.mean if data.fit_intercept else None)
    if base is not data and not bool(torch.isfinite(gram.sum())):
        # beyond float32's range: in the data's precision
        gram = _centred_products(data.X, data.mean if data.fit_intercept else None)
    return gram


def _centred_products(X: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
    """``(X - mean)^T (X - mean) / n`` for every group, centring a chunk at a time on
    the CPU (all at once on a GPU, whose caching allocator reuses the memory)."""
    G, n, F = X.shape
    out = torch.empty((G, F, F), dtype=X.dtype, device=X.device)
    chunk = G
    if X.device.type == "cpu":
        chunk = max(1, (1 << 21) // max(1, n * F * X.element_size()))  # ~2 MiB of data
    for start in range(0, G, chunk):
        sl = slice(start, min(G, start + chunk))
        Xc = X[sl] - mean[sl].unsqueeze(1) if mean is not None else X[sl]
        out[sl] = _matmul(Xc.transpose(1, 2), Xc)
    return out.mul_(1.0 / n)


def prepare_data(X: torch.Tensor, fit_intercept: bool = True) -> PreparedData:
    """The data and per-group statistics the solvers reuse across solves on one ``X``.

    The means are computed here; the second moment (for the preconditioner) and the
    float32 copy of float64 data (for the first phase of a solve) when first needed.

    Parameters
    ----------
    X : torch.Tensor of shape (n, F) or (G, n, F)
    fit_intercept : bool, default=True

    Returns
    -------
    PreparedData
    """
    if X.ndim == 2:
        X = X.unsqueeze(0)
    if fit_intercept:
        mean = X.mean(dim=1)
    else:
        mean = torch.zeros(X.shape[0], X.shape[2], dtype=X.dtype, device=X.device)
    return PreparedData(X, mean, fit_intercept)


class _Problems:
    """The data and per-problem constants of a batch, with compaction.

    Layouts: targets ``Y`` (G|1, M|1, K, n); weights ``w`` (G, M, n); parameters
    ``theta`` (G, M, Kp, F[+1]) with the intercept as the last column; logits
    (G, M, Kp, n).
    """

    def __init__(self, data: PreparedData, Y, weights, C, penalty, binary, pinv=None):
        self.data = data
        X = data.X
        G, n, F = X.shape
        self.n_features = F
        self.fit_intercept = data.fit_intercept
        self.binary = binary
        dtype, device = X.dtype, X.device
        Y = Y.to(dtype=dtype, device=device)
        if Y.ndim == 2:
            Y = Y.t()[None, None]
        elif Y.ndim == 3:
            Y = Y.transpose(1, 2)[None]
        else:
            Y = Y.transpose(2, 3)
        self.Y = Y.contiguous()
        self.n_classes = Y.shape[2]
        w = weights.to(dtype=dtype, device=device)
        if w.ndim == 1:
            w = w[None, None]
        elif w.ndim == 2:
            w = w[None]
        M = max(w.shape[1], Y.shape[1], C.shape[-1])
        if max(Y.shape[0], w.shape[0], C.shape[0]) > G:
            raise ValueError(f"X has {G} groups but targets, weights or C have more.")
        if w.shape[0] != G or w.shape[1] != M:
            w = w.expand(G, M, n)
        self.w = w
        self.sw = self.w.sum(dim=2).clamp_min(torch.finfo(dtype).tiny)  # (G, M)
        self.wn = self.w / self.sw.unsqueeze(2)
        C = torch.broadcast_to(C.to(device), (G, M)).to(dtype)
        if penalty is None:
            lam = torch.zeros((G, M), dtype=dtype, device=device)
        else:
            lam = torch.where(torch.isinf(C), torch.zeros_like(C), 1.0 / (C * self.sw))
        self.lam = lam  # (G, M): strength of the penalty in the scaled objective
        self.G, self.M, self.n = G, M, n
        self.Kp = 1 if binary else self.n_classes
        self.curv = 0.25 if binary else 1.0 / self.n_classes
        if pinv is not None:
            self.pinv = pinv
        else:
            self._setup_preconditioner()

    def _setup_preconditioner(self) -> None:
        """The inverse of ``curv * gram + lam I`` per group (through its Cholesky factor)
        when the problems of a group have about the same penalty (folds, permutations,
        time bins), else the eigen-decomposition of ``gram``, which serves any penalty
        per problem.

        The preconditioner is kept and applied in float32 whatever the data's precision:
        it only approximates the Hessian, the iterates, objective and gradient stay in
        the data's precision, and a float32 product is 2-6x faster on the CPU.
        """
        lam = self.lam.to(torch.float64)
        lo, hi = lam.amin(dim=1), lam.amax(dim=1)
        self.pinv = None
        if bool((hi <= 2 * lo).all()) or bool((hi == 0).all()):
            gram = self.data.gram
            diag = gram.diagonal(dim1=1, dim2=2)
            shift = torch.sqrt(lo * hi) * (lo > 0) + 1e-10 * diag.amax(dim=1).clamp_min(1e-30)
            # float32 first (fast); float64 when that factorisation fails. The explicit
            # inverse: one batched product per application, faster than triangular
            # solves for the few right-hand sides of a group.
            for dtype in (torch.float32, torch.float64):
                A = gram.to(dtype) * self.curv
                A.diagonal(dim1=1, dim2=2).add_(shift.to(dtype)[:, None])
                L, info = torch.linalg.cholesky_ex(A)
                if not bool((info != 0).any()):
                    pinv = torch.cholesky_inverse(L).to(torch.float32).contiguous()
                    # a finite sum means finite entries (one reduction instead of a mask)
                    if bool(torch.isfinite(pinv.sum())) or bool(torch.isfinite(pinv).all()):
                        self.pinv = pinv
                        break

    # --------------------------------------------------------------- compaction
    def compact(self, g_idx: torch.Tensor, m_idx: torch.Tensor) -> None:
        if self.data.X.shape[0] > 1:
            self.data = self.data.take_groups(g_idx, stats=self.pinv is None)
        if self.Y.shape[0] > 1:
            self.Y = self.Y[g_idx]
        if self.Y.shape[1] > 1:
            self.Y = self.Y[:, m_idx]
        self.w = self.w[g_idx][:, m_idx]
        self.sw = self.sw[g_idx][:, m_idx]
        self.wn = self.w / self.sw.unsqueeze(2)
        self.lam = self.lam[g_idx][:, m_idx]
        if self.pinv is not None and self.pinv.shape[0] > 1:
            self.pinv = self.pinv[g_idx]
        self.G, self.M = int(g_idx.numel()), int(m_idx.numel())

    # --------------------------------------------------------------- algebra
    def logits(self, theta: torch.Tensor) -> torch.Tensor:
        """``theta`` (G, M, Kp, F[+1]) -> logits (G, M, Kp, n)."""
        F = self.n_features
        return logits(self.data.X, theta[..., :F], theta[..., F] if self.fit_intercept else None)

    def evaluate(self, Z: torch.Tensor):
        """Weighted mean loss (G, M) and what :meth:`residual` needs."""
        if self.binary:
            z = Z[:, :, 0]
            loss_i = torch.nn.functional.softplus(z) - self.Y[:, :, 1] * z
            state = z
        else:
            state = torch.log_softmax(Z, dim=2)
            loss_i = -(self.Y * state).sum(2)
        return torch.linalg.vecdot(self.w, loss_i, dim=2) / self.sw, state

    def residual(self, state: torch.Tensor) -> torch.Tensor:
        """d(loss)/dZ (G, M, Kp, n) from the state returned by :meth:`evaluate`."""
        if self.binary:
            return ((torch.sigmoid(state) - self.Y[:, :, 1]) * self.wn).unsqueeze(2)
        R = torch.exp(state)
        R -= self.Y
        R *= self.wn.unsqueeze(2)
        return R

    def data_gradient(self, R: torch.Tensor) -> torch.Tensor:
        """``R X`` (and the intercept column) in the layout of theta."""
        G, M, Kp, n = R.shape
        gW = _matmul(R.reshape(G, M * Kp, n), self.data.X).view(G, M, Kp, -1)
        if self.fit_intercept:
            gW = torch.cat([gW, R.sum(dim=3, keepdim=True)], dim=3)
        return gW

    def precondition(self, v: torch.Tensor, lam: torch.Tensor | None = None) -> torch.Tensor:
        """Apply the inverse of ``curv * Gram + lam * I`` (the intercept unpenalised).

        ``v`` may hold several vectors per problem side by side along its second
        dimension (``lam`` then gives their penalties, shape (G, v.shape[1])).

        With an intercept the Gram matrix is the centred one; the change of variables
        ``(W, b) -> (W, b + W @ mean)`` decouples the intercept, so the inverse is an
        eigen-basis rescaling of the weights plus a shift of the intercept.
        """
        d = self.data
        F = self.n_features
        G, M, Kp, _ = v.shape
        c = self.curv
        vW = v[..., :F]
        if self.fit_intercept:
            vb = v[..., F]  # (G, M, Kp)
            uW = vW - vb.unsqueeze(-1) * d.mean[:, None, None, :]
        else:
            uW = vW
        u32 = uW.reshape(G, M * Kp, F).to(torch.float32)
        if self.pinv is not None:  # inverse of curv * gram + lam I, symmetric
            rW = _matmul(u32, self.pinv).to(v.dtype).view(G, M, Kp, F)
        else:
            e, Q = d.eig()  # (G, F), (G, F, F) with eigenvectors as columns
            proj = _matmul(u32, Q).to(v.dtype).view(G, M, Kp, F)
            floor = 1e-10 * e.amax(dim=1, keepdim=True).clamp_min(1e-30)
            lam = self.lam if lam is None else lam
            denom = c * torch.maximum(e, floor)[:, None, :] + lam[:, :, None]  # (G, M, F)
            proj = (proj / denom.unsqueeze(2)).reshape(G, M * Kp, F).to(torch.float32)
            rW = _matmul(proj, Q.transpose(1, 2)).to(v.dtype).view(G, M, Kp, F)
        if not self.fit_intercept:
            return rW
        rb = vb / c - torch.linalg.vecdot(rW, d.mean[:, None, None, :], dim=3)
        return torch.cat([rW, rb.unsqueeze(-1)], dim=3)


def logits(X: torch.Tensor, coef: torch.Tensor, intercept: torch.Tensor | None = None) -> torch.Tensor:
    """Logits of every problem of a batch on every sample.

    Parameters
    ----------
    X : torch.Tensor of shape (G, n, F)
    coef : torch.Tensor of shape (G, M, Kp, F)
    intercept : torch.Tensor of shape (G, M, Kp), optional

    Returns
    -------
    torch.Tensor of shape (G, M, Kp, n)
    """
    G, M, Kp, F = coef.shape
    W = coef.reshape(G, M * Kp, F)
    if X.device.type == "cpu" and (G > 1 or X.dtype == torch.float32):
        # X @ W^T then a transpose: on the CPU 1.6-5x faster than W @ X^T for many
        # small products and for float32 (see _matmul)
        Z = _matmul(X, W.transpose(1, 2)).transpose(1, 2).contiguous().view(G, M, Kp, -1)
    else:
        Z = _matmul(W, X.transpose(1, 2)).view(G, M, Kp, -1)
    if intercept is not None:
        Z = Z + intercept.unsqueeze(-1)
    return Z


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``a @ b``; through NumPy's BLAS in single-threaded CPU work.

    For the solvers' batched products (many ``(n, F) x (F, few)`` products, and
    ``(few, n) x (n, F)``) NumPy's OpenBLAS on one thread measured 1.6-4x faster than
    torch's batched CPU path on the development machine (100 x 400 x 128 x 6: 1.3 ms
    instead of 2.8 ms in float32, 3.8 ms instead of 6.2 ms in float64); no copy either
    way. Multi-threaded work stays with torch: OpenBLAS's threads next to torch's
    OpenMP threads made a large cross-validation 2.5x slower.
    """
    if a.device.type != "cpu" or not is_single():
        return torch.matmul(a, b)
    if a.numel() < b.numel():  # the small operand contiguous: a strided one is ~1.6x slower
        a = a.contiguous()
    else:
        b = b.contiguous()
    return torch.from_numpy(np.matmul(to_numpy(a.resolve_neg()), to_numpy(b.resolve_neg())))


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-problem inner product of two theta-shaped tensors -> (G, M)."""
    return torch.linalg.vecdot(a.flatten(2), b.flatten(2), dim=2)


def _amax(a: torch.Tensor) -> torch.Tensor:
    return a.abs().flatten(2).amax(dim=2)


def _expand(gm: torch.Tensor) -> torch.Tensor:
    """(G, M) -> (G, M, 1, 1), to scale theta- or logit-shaped tensors per problem."""
    return gm[:, :, None, None]


def solve_logistic(X, Y, weights, C, *, penalty: str | None = "l2", fit_intercept: bool = True,
                   binary: bool = False, max_iter: int = 1000, tol: float = 1e-4,
                   init: tuple[torch.Tensor, torch.Tensor] | None = None,
                   data: PreparedData | None = None, memory: int = 10) -> LogisticSolution:
    """Solve a ``(G, M)`` grid of penalised logistic regressions at once.

    Parameters
    ----------
    X : torch.Tensor of shape (n, F) or (G, n, F)
        Data, shared by all problems or one matrix per group. Ignored when ``data``
        is given.
    Y : torch.Tensor of shape (n, K), (M, n, K) or (G, M, n, K)
        One-hot targets, shared or per problem (dimensions of size 1 broadcast).
    weights : torch.Tensor of shape (n,), (M, n) or (G, M, n)
        Non-negative sample weights per problem; 0 holds a sample out (a CV fold).
    C : float or array-like broadcastable to (G, M)
        Inverse regularisation strength per problem (``inf`` = no penalty).
    penalty : {"l2", "l1", None}, default="l2"
    fit_intercept : bool, default=True
    binary : bool, default=False
        Two classes with scikit-learn's single-logit parametrisation (``K == 2``).
    max_iter : int, default=1000
    tol : float, default=1e-4
        Stop a problem when the largest absolute entry of its gradient (gradient
        mapping for l1) is at most ``tol``, or when the objective stops decreasing
        (relative change below ``64 * eps``, scikit-learn's ``ftol``).
    init : (coef, intercept), default=None
        Warm start, shapes broadcastable to (G, M, Kp, F) and (G, M, Kp); zeros when None.
    data : PreparedData, default=None
        Reuse statistics of ``X`` from :func:`prepare_data`.
    memory : int, default=10
        L-BFGS history length.

    Returns
    -------
    LogisticSolution
        ``n_iter`` counts the iterations of both phases of a float64 solve.

    Notes
    -----
    Above ``MIXED_PRECISION_MIN_WORK`` multiply-adds per pass, float64 problems are
    first iterated in float32 and finished in float64 (:func:`_solve`); above
    ``PARALLEL_MIN_WORK``, on the CPU with more than one thread available, a batch of
    several groups is split into interleaved blocks solved in parallel threads
    (:func:`_solve_in_threads`). Either way each problem stops on its float64
    criterion.
    """
    if data is None:
        data = prepare_data(X, fit_intercept)
    elif data.fit_intercept != fit_intercept:
        raise ValueError("prepare_data was called with a different fit_intercept.")
    C = torch.as_tensor(C, dtype=torch.float64)
    C = C.reshape(1, 1) if C.ndim == 0 else (C.unsqueeze(0) if C.ndim == 1 else C)
    opts = dict(penalty=penalty, fit_intercept=fit_intercept, binary=binary, max_iter=max_iter,
                tol=tol, memory=memory)
    G, n, F = data.X.shape
    Kp = 1 if binary else Y.shape[-1]
    M = max(Y.shape[-3] if Y.ndim >= 3 else 1, weights.shape[-2] if weights.ndim >= 2 else 1,
            C.shape[-1])
    work = G * M * Kp * n * F  # multiply-adds of one pass over the data
    mixed = data.X.dtype == torch.float64 and work >= MIXED_PRECISION_MIN_WORK
    n_threads = available_threads()
    if data.X.device.type == "cpu" and G >= 2 and n_threads > 1 and work >= PARALLEL_MIN_WORK:
        return _solve_in_threads(data, Y, weights, C, init, opts, mixed, min(n_threads, G))
    return _solve(data, Y, weights, C, init, opts, mixed)


# Below these sizes (multiply-adds of one pass over the data) a solve runs as it is:
# the float32 phase and the threads cost more than they save on tiny problems.
MIXED_PRECISION_MIN_WORK = 2e6
PARALLEL_MIN_WORK = 2e6


def _solve(data: PreparedData, Y, weights, C, init, opts: dict, mixed: bool) -> LogisticSolution:
    """One batched solve; with ``mixed``, float32 iterations first, finished in float64.

    The float32 phase does most of the work at half the memory traffic; the float64
    phase starts from its solution, checks the tolerance on the float64 gradient and
    iterates until it holds, so the result meets the same criterion as a float64 solve.
    """
    low = data.low() if mixed else None  # None also when float32 would overflow
    if low is None:
        return _solve_one(data, Y, weights, C, init, **opts)
    # float32 resolves relative changes of the objective only to ~1e-7: stopping on a
    # flat objective (64 eps) would hand unfinished problems to the float64 phase, so
    # the phase ends on the gradient criterion or when the line search finds no decrease
    lo_opts = dict(opts, ftol_factor=0.01)
    f32 = torch.float32
    lo_init = None if init is None else (init[0].to(f32), init[1].to(f32))
    first = _solve_one(low, Y.to(f32), weights.to(f32), C, lo_init, **lo_opts)
    coef, icpt = first.coef.to(torch.float64), first.intercept.to(torch.float64)
    finite = torch.isfinite(coef).flatten(2).all(2) & torch.isfinite(icpt).all(2)
    if not bool(finite.all()):
        c0 = torch.zeros_like(coef) if init is None else torch.broadcast_to(init[0], coef.shape)
        b0 = torch.zeros_like(icpt) if init is None else torch.broadcast_to(init[1], icpt.shape)
        coef = torch.where(finite[..., None, None], coef, c0.to(coef))
        icpt = torch.where(finite[..., None], icpt, b0.to(icpt))
    rest = dict(opts, max_iter=max(opts["max_iter"] - int(first.n_iter.min()), 0))
    second = _solve_one(data, Y, weights, C, (coef, icpt), **rest, pinv=first.pinv)
    second.n_iter = second.n_iter + first.n_iter
    return second


def _group_slice(x: torch.Tensor | None, sl: slice, group_ndim: int):
    """Slice the groups of a tensor that has a group dimension (``group_ndim`` dims)."""
    if x is None or x.ndim < group_ndim or x.shape[-group_ndim] == 1:
        return x
    return x[(Ellipsis, sl) + (slice(None),) * (group_ndim - 1)]


def _solve_in_threads(data, Y, weights, C, init, opts, mixed, n_parts) -> LogisticSolution:
    """Solve blocks of groups in parallel threads (see :mod:`neuroml._parallel`).

    The solver's many small element-wise operations gain little from torch's intra-op
    threads (each pays for waking them), whereas blocks of independent groups keep every
    core busy.
    """
    G = data.X.shape[0]
    # interleaved blocks (groups k, k + n_parts, ...): neighbouring groups (time bins)
    # are about as hard, so each block gets its share of the hard ones (contiguous
    # halves left one thread with every bin after a stimulus onset: 30 % idle time)
    parts = [slice(k, G, n_parts) for k in range(n_parts)]

    def job(sl):
        part_init = None if init is None else (_group_slice(init[0], sl, 4),
                                               _group_slice(init[1], sl, 3))
        part = data.take_groups(sl)
        sol = _solve(part, _group_slice(Y, sl, 4), _group_slice(weights, sl, 3),
                     _group_slice(C, sl, 2), part_init, opts, mixed)
        return sol, part

    done = run_blocks(job, parts)
    order = torch.cat([torch.arange(G)[sl] for sl in parts])
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(G)

    def gather(tensors):
        return torch.cat(tensors)[inverse.to(tensors[0].device)]

    if data._gram is None and all(part._gram is not None for _, part in done):
        # the blocks computed their statistics in parallel: keep them for later solves,
        # assembled only if one comes (a copy of all of them)
        grams = [part._gram for _, part in done]
        data._gram = lambda: gather(grams)
    return LogisticSolution(*(gather([getattr(sol, k) for sol, _ in done])
                              for k in ("coef", "intercept", "n_iter", "converged")))


def _solve_one(data, Y, weights, C, init, *, penalty, fit_intercept, binary, max_iter, tol,
               memory, pinv=None, ftol_factor=1.0) -> LogisticSolution:
    prob = _Problems(data, Y, weights, C, penalty, binary, pinv)
    pinv = prob.pinv  # before compaction drops finished groups from it
    G, M, Kp, F = prob.G, prob.M, prob.Kp, prob.n_features
    rows = F + int(fit_intercept)
    dtype, device = data.X.dtype, data.X.device
    theta = torch.zeros((G, M, Kp, rows), dtype=dtype, device=device)
    if init is not None:
        coef0, b0 = init
        theta[..., :F] = torch.broadcast_to(coef0.to(dtype=dtype, device=device), (G, M, Kp, F))
        if fit_intercept:
            theta[..., F] = torch.broadcast_to(b0.to(dtype=dtype, device=device), (G, M, Kp))
    # from zero weights the logits are zeros: no product needed
    Z = torch.zeros((G, M, Kp, prob.n), dtype=dtype, device=device) if init is None else None
    with threads_for(prob.G * prob.n * F * Kp * M, device), torch.no_grad():
        if penalty == "l1":
            theta, n_iter, converged = _fista(prob, theta, max_iter, tol, Z)
        else:
            theta, n_iter, converged = _lbfgs(prob, theta, max_iter, tol, memory, ftol_factor, Z)
    coef = theta[..., :F].contiguous()
    intercept = (theta[..., F].contiguous() if fit_intercept
                 else torch.zeros((G, M, Kp), dtype=dtype, device=device))
    if not binary:
        # Unpenalised directions (intercepts always; all weights without a penalty)
        # are defined up to a constant shift across classes; fix them to sum to zero,
        # as scikit-learn's solution from a zero start does. Probabilities are unchanged.
        intercept = intercept - intercept.mean(dim=-1, keepdim=True)
        if penalty is None:
            coef = coef - coef.mean(dim=2, keepdim=True)
    return LogisticSolution(coef, intercept, n_iter, converged, pinv)


_COMPACT_AT = 0.75  # see _Tracker.compact_index


class _Tracker:
    """Which problems are still running; finished ones are written to ``out``."""

    def __init__(self, G, M, device):
        self.g_map = torch.arange(G, device=device)
        self.m_map = torch.arange(M, device=device)
        self.active = torch.ones((G, M), dtype=torch.bool, device=device)
        self.n_iter = torch.zeros((G, M), dtype=torch.long, device=device)
        self.converged = torch.zeros((G, M), dtype=torch.bool, device=device)

    def record(self, out: torch.Tensor, theta: torch.Tensor, done: torch.Tensor, it: int,
               conv: torch.Tensor) -> None:
        gi, mi = torch.nonzero(done & self.active, as_tuple=True)
        if gi.numel():
            G0, M0 = self.g_map[gi], self.m_map[mi]
            out[G0, M0] = theta[gi, mi]
            self.n_iter[G0, M0] = it
            self.converged[G0, M0] = conv[gi, mi]
        self.active = self.active & ~done

    def compact_index(self):
        """Indices of the groups / problems still running, or None when not worth it.

        Compaction copies the running problems' state and data (about one pass over
        them), worth it once a quarter of the batch has finished (``_COMPACT_AT``;
        between a tenth and a half the measured time changed by less than the noise).
        """
        keep_g = self.active.any(dim=1)
        keep_m = self.active.any(dim=0)
        G, M = self.active.shape
        if int(keep_g.sum()) * int(keep_m.sum()) > _COMPACT_AT * G * M:
            return None
        g_idx = torch.nonzero(keep_g, as_tuple=True)[0]
        m_idx = torch.nonzero(keep_m, as_tuple=True)[0]
        self.g_map = self.g_map[g_idx]
        self.m_map = self.m_map[m_idx]
        self.active = self.active[g_idx][:, m_idx]
        return g_idx, m_idx


def _take(x: torch.Tensor, gi: torch.Tensor, mi: torch.Tensor) -> torch.Tensor:
    """Compact a (G, M, ...) tensor."""
    return x[gi][:, mi]


def _flat(x: torch.Tensor) -> torch.Tensor:
    """A (G, M, Kp, R) parameter tensor as (G, M, Kp * R) (a view)."""
    return x.view(x.shape[0], x.shape[1], -1)


def _lbfgs(prob: _Problems, theta: torch.Tensor, max_iter: int, tol: float, memory: int,
           ftol_factor: float = 1.0, Z: torch.Tensor | None = None):
    """Preconditioned L-BFGS over the batch; see the module docstring.

    Per-problem vectors (iterate, gradient, direction, history) are handled as flat
    ``(G, M, Kp * (F + 1))`` views, and the penalty as a ``(G, M, Kp * (F + 1))``
    tensor ``lam_pm`` (``lam`` on the weights, 0 on the intercepts), which keeps the
    number of tensor operations per iteration low: on the CPU their dispatch, not
    their arithmetic, is most of an iteration's time for small problems.
    """
    G, M = prob.G, prob.M
    dtype = theta.dtype
    ftol = 64 * torch.finfo(dtype).eps * ftol_factor
    out = theta.clone()
    tr = _Tracker(G, M, theta.device)
    F = prob.n_features
    mask = torch.zeros(theta.shape[2:], dtype=dtype, device=theta.device)
    mask[:, :F] = 1
    mask = mask.reshape(-1)  # 1 on the penalised weights, 0 on the intercepts

    def penalty_weights():
        return prob.lam.unsqueeze(-1) * mask  # (G, M, P)

    def gradient(state, theta_):
        g = prob.data_gradient(prob.residual(state))
        _flat(g).addcmul_(_flat(theta_), lam_pm)
        return g

    lam_pm = penalty_weights()
    Z = prob.logits(theta) if Z is None else Z  # Z: the logits of theta when known
    f, state = prob.evaluate(Z)
    tf = _flat(theta)
    f = f + 0.5 * torch.linalg.vecdot(lam_pm * tf, tf)
    g = gradient(state, theta)
    del state
    S: list[torch.Tensor] = []  # flat (G, M, P) steps
    Yh: list[torch.Tensor] = []  # flat gradient changes
    rho: list[torch.Tensor] = []
    sy_last = None
    it = 0
    done = _amax(g) <= tol
    tr.record(out, theta, done, 0, done)
    if bool(done.any()) and bool(tr.active.any()):
        idx = tr.compact_index()
        if idx is not None:
            gi, mi = idx
            prob.compact(gi, mi)
            theta, Z, f, g = _take(theta, gi, mi), _take(Z, gi, mi), _take(f, gi, mi), _take(g, gi, mi)
            lam_pm = penalty_weights()
    while bool(tr.active.any()) and it < max_iter:
        it += 1
        active = tr.active
        Gc, Mc = g.shape[:2]
        gf = _flat(g)
        # two-loop recursion, preconditioned and scaled by the latest curvature pair
        q = gf.clone()
        alphas = []
        for s_i, y_i, r_i in zip(reversed(S), reversed(Yh), reversed(rho), strict=True):
            a = r_i * torch.linalg.vecdot(s_i, q)
            alphas.append(a)
            q.addcmul_(y_i, a.unsqueeze(-1), value=-1)
        if S:
            # the preconditioner applied to q and to the latest y in one call
            both = torch.cat([q.view(g.shape), Yh[-1].view(g.shape)], dim=1)
            lam2 = None if prob.pinv is not None else torch.cat([prob.lam, prob.lam], dim=1)
            Pboth = _flat(prob.precondition(both, lam2))
            rf, Py = Pboth[:, :Mc].contiguous(), Pboth[:, Mc:]
            yHy = torch.linalg.vecdot(Yh[-1], Py)
            ok = (rho[-1] > 0) & (yHy > 0)
            rf.mul_(torch.where(ok, sy_last / torch.where(ok, yHy, 1.0), 1.0).unsqueeze(-1))
        else:
            rf = _flat(prob.precondition(q.view(g.shape)))
        for s_i, y_i, r_i, a in zip(S, Yh, rho, reversed(alphas), strict=True):
            b = r_i * torch.linalg.vecdot(y_i, rf)
            rf.addcmul_(s_i, (a - b).unsqueeze(-1))
        df = rf.neg_()
        gd = torch.linalg.vecdot(gf, df)
        bad = (gd >= 0) & active  # not a descent direction: use the preconditioned gradient
        if bool(bad.any()):
            df = torch.where(bad.unsqueeze(-1), -_flat(prob.precondition(g)), df)
            gd = torch.linalg.vecdot(gf, df)
        act = active.to(dtype)
        df.mul_(act.unsqueeze(-1))
        gd = gd * act
        d = df.view(g.shape)
        # backtracking line search along d; the logits are linear in the step and the
        # penalty quadratic: f(t) = loss(Z + t Zd) + pen0 + t (c1 + t c2)
        Zd = prob.logits(d)
        tw = lam_pm * _flat(theta)
        pen0 = 0.5 * torch.linalg.vecdot(tw, _flat(theta))
        c1 = torch.linalg.vecdot(tw, df)
        c2 = 0.5 * torch.linalg.vecdot(lam_pm * df, df)
        armijo = 1e-4 * gd
        # the preconditioner is the Hessian at zero weights (uniform probabilities), so
        # the unit step is a good first guess even before any curvature pair
        step = torch.ones_like(f)
        accepted = ~active
        f_new = f.clone()
        state = Z_next = None
        for trial_no in range(40):
            trial = ~accepted
            Zt = torch.addcmul(Z, Zd, _expand(step)) if trial_no else Z + Zd
            loss_t, state_t = prob.evaluate(Zt)
            f_t = loss_t + pen0 + step * (c1 + step * c2)
            ok = (f_t <= f + step * armijo) & torch.isfinite(f_t)
            newly = trial & ok
            f_new = torch.where(newly, f_t, f_new)
            accepted = accepted | newly
            if bool(accepted.all()):
                if trial_no == 0:
                    state, Z_next = state_t, Zt
                break
            # quadratic interpolation, safeguarded to [0.1, 0.5] of the step
            denom = 2 * (f_t - f - step * gd)
            t_q = torch.where(denom > 0, -gd * step * step / denom.clamp_min(1e-300), 0.5 * step)
            t_new = torch.clamp(t_q, min=0.1 * step, max=0.5 * step)
            t_new = torch.where(torch.isfinite(f_t), t_new, 0.1 * step)
            step = torch.where(trial & ~ok, t_new, step)
        del Zt, state_t
        failed = ~accepted  # no decrease found: the precision is exhausted
        if bool(failed.any()):
            step = torch.where(failed, 0.0, step)
            f_new = torch.where(failed, f, f_new)
        sf = df.mul_(step.unsqueeze(-1))
        theta = theta + sf.view(g.shape)
        refresh = it % 25 == 0  # recompute the incremental logits to limit drift
        if refresh:
            Z = prob.logits(theta)
        else:
            Z = Z_next if Z_next is not None else Z.addcmul_(Zd, _expand(step))
        if state is None or refresh:
            _, state = prob.evaluate(Z)
        del Zd, Z_next
        g_new = gradient(state, theta)
        del state
        yv = _flat(g_new) - gf
        sy = torch.linalg.vecdot(sf, yv)
        good = (sy > 1e-10 * torch.linalg.vecdot(yv, yv)) & active & (step > 0)
        rho_new = torch.where(good, 1.0 / torch.where(good, sy, 1.0), 0.0)
        S.append(sf)
        Yh.append(yv)
        rho.append(rho_new)
        sy_last = sy
        if len(S) > memory:
            S.pop(0)
            Yh.pop(0)
            rho.pop(0)
        small_f = (f - f_new) <= ftol * torch.maximum(torch.maximum(f.abs(), f_new.abs()),
                                                      torch.ones_like(f))
        grad_ok = _amax(g_new) <= tol
        f, g = f_new, g_new
        done = active & (grad_ok | small_f | failed)
        tr.record(out, theta, done, it, grad_ok | small_f)
        idx = tr.compact_index() if bool(done.any()) else None
        if idx is not None and bool(tr.active.any()):
            gi, mi = idx
            prob.compact(gi, mi)
            theta, Z, f, g = _take(theta, gi, mi), _take(Z, gi, mi), _take(f, gi, mi), _take(g, gi, mi)
            S = [_take(x, gi, mi) for x in S]
            Yh = [_take(x, gi, mi) for x in Yh]
            rho = [_take(x, gi, mi) for x in rho]
            sy_last = _take(sy_last, gi, mi)
            lam_pm = penalty_weights()
    tr.record(out, theta, tr.active.clone(), it, torch.zeros_like(tr.active))
    return out, tr.n_iter, tr.converged


def _soft_threshold(x: torch.Tensor, thr: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.clamp(x.abs() - thr, min=0) + 0.0  # + 0.0: no -0.0


def _fista(prob: _Problems, theta: torch.Tensor, max_iter: int, tol: float,
           Z: torch.Tensor | None = None):
    G, M = prob.G, prob.M
    dtype = theta.dtype
    F = prob.n_features
    out = theta.clone()
    tr = _Tracker(G, M, theta.device)
    # starting Lipschitz estimate: curvature bound times the top eigenvalue of the
    # (uncentred, with the intercept column) second moment; backtracking raises it
    top = prob.data.eig()[0].amax(dim=1)
    if prob.fit_intercept:
        top = top + 1.0 + (prob.data.mean ** 2).sum(dim=1)
    cmax = 0.25 if prob.binary else 0.5
    L = (0.25 * cmax * top)[:, None].expand(G, M).clone().clamp_min(1e-12)

    def prox(v, Lc):
        w = _soft_threshold(v[..., :F], _expand(prob.lam / Lc))
        return torch.cat([w, v[..., F:]], dim=3) if prob.fit_intercept else w

    x = theta
    Zx = prob.logits(x) if Z is None else Z  # Z: the logits of theta when known
    x_prev, Zx_prev = x, Zx
    tk = torch.ones((G, M), dtype=dtype, device=theta.device)
    it = 0
    while bool(tr.active.any()) and it < max_iter:
        it += 1
        active = tr.active
        t_next = (1 + torch.sqrt(1 + 4 * tk * tk)) / 2
        beta = _expand((tk - 1) / t_next)
        yv = x + beta * (x - x_prev)
        Zy = Zx + beta * (Zx - Zx_prev)
        fy, state = prob.evaluate(Zy)
        gy = prob.data_gradient(prob.residual(state))
        del state, Zy
        accepted = ~active
        x_new, Z_new = x, Zx
        for _ in range(30):
            cand = prox(yv - gy / _expand(L), L)
            Zc = prob.logits(cand)
            fc, _ = prob.evaluate(Zc)
            diff = cand - yv
            bound = fy + _dot(gy, diff) + 0.5 * L * _dot(diff, diff)
            ok = (fc <= bound + 1e-12 * fy.abs()) | accepted
            take = ok & ~accepted
            x_new = torch.where(_expand(take), cand, x_new)
            Z_new = torch.where(_expand(take), Zc, Z_new)
            accepted = accepted | ok
            if bool(accepted.all()):
                break
            L = torch.where(accepted, L, 2 * L)
        gmap = _amax(x_new - yv) * L
        # adaptive restart when the momentum points uphill
        restart = _dot(yv - x_new, x_new - x) > 0
        tk = torch.where(restart, torch.ones_like(tk), t_next)
        keep = _expand(restart)
        x_prev = torch.where(keep, x_new, x)
        Zx_prev = torch.where(keep, Z_new, Zx)
        x, Zx = x_new, Z_new
        if it % 25 == 0:
            Zx = prob.logits(x)
            Zx_prev = prob.logits(x_prev)
        done = active & (gmap <= tol)
        tr.record(out, x, done, it, done)
        idx = tr.compact_index() if bool(done.any()) else None
        if idx is not None and bool(tr.active.any()):
            gi, mi = idx
            prob.compact(gi, mi)
            x, Zx = _take(x, gi, mi), _take(Zx, gi, mi)
            x_prev, Zx_prev = _take(x_prev, gi, mi), _take(Zx_prev, gi, mi)
            tk, L = _take(tk, gi, mi), _take(L, gi, mi)
    tr.record(out, x, tr.active.clone(), it, torch.zeros_like(tr.active))
    return out, tr.n_iter, tr.converged
