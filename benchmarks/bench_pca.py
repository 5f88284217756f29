"""PCA benchmark: ``neuroml.PCA`` against scikit-learn's ``PCA(svd_solver="covariance_eigh")``.

1,000,000 samples x 512 features in float32 (2 GB), a planted 20-dimensional signal
plus isotropic noise and a per-feature offset (like binned spike counts, whose mean is
not zero). Both estimators fit the same array in one process with the
``covariance_eigh`` solver and ``n_components=50``; the best of a few timed fits (after
a warm-up; the two libraries take turns, so changes in machine load hit both alike) is
reported, and the ratio ``sklearn / neuroml`` printed (> 1 means neuroml is faster).

Accuracy: both results are compared with a float64 reference computed with NumPy alone
(two-pass: float64 mean, then the covariance of centred float64 chunks); neuroml's
explained variances must be within 1e-4 of it and its top-20 subspace within 1e-3 rad,
and the two libraries' top-10 variances within 1e-2 of each other. scikit-learn's
float32 ``covariance_eigh`` forms ``X^T X - n mean mean^T`` in float32, which loses
digits to cancellation on data with an offset; the script prints both errors. With
``--float64-peer`` scikit-learn is also timed on a float64 copy of the data (its
accurate path; 4 GB more memory at the full size).

On CUDA (``--device cuda``) neuroml is timed twice: from the NumPy array in host memory
(the host-to-device copy included) and from a tensor already on the GPU.

Run with ``python benchmarks/bench_pca.py`` (``--n-samples 200000`` for a quicker run,
``--device cuda`` on a GPU machine).
"""

from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg
import torch
from _timing import interleaved
from sklearn.decomposition import PCA as SkPCA

from neuroml import PCA


def make_data(n_samples: int, n_features: int, rank: int = 20, seed: int = 0) -> np.ndarray:
    """float32 ``(n_samples, n_features)``: planted rank-``rank`` signal + noise + offset.

    Generated in chunks so that only the output array (``4 * n_samples * n_features``
    bytes) is held at full size.
    """
    rng = np.random.default_rng(seed)
    loadings = np.linalg.qr(rng.standard_normal((n_features, rank)))[0].T.astype(np.float32)
    scales = np.geomspace(10.0, 1.0, rank).astype(np.float32)
    offset = rng.uniform(2.0, 20.0, n_features).astype(np.float32)
    X = np.empty((n_samples, n_features), dtype=np.float32)
    step = 65536
    for start in range(0, n_samples, step):
        stop = min(start + step, n_samples)
        latents = rng.standard_normal((stop - start, rank), dtype=np.float32) * scales
        block = rng.standard_normal((stop - start, n_features), dtype=np.float32)
        block += latents @ loadings
        block += offset
        X[start:stop] = block
    return X


def reference_spectrum(X: np.ndarray, n_components: int):
    """Mean, top eigenvalues and eigenvectors of the covariance of ``X``, float64, NumPy only."""
    n_samples, n_features = X.shape
    mean = X.mean(axis=0, dtype=np.float64)
    cov = np.zeros((n_features, n_features))
    for start in range(0, n_samples, 32768):
        block = X[start:start + 32768].astype(np.float64)
        block -= mean
        cov += block.T @ block
    cov /= n_samples - 1
    evals, evecs = np.linalg.eigh(cov)
    return mean, evals[::-1][:n_components], evecs[:, ::-1][:, :n_components].T


def main(n_samples: int = 1_000_000, n_features: int = 512, n_components: int = 50,
         device: str = "cpu", repeats: int = 3, float64_peer: bool = False) -> dict:
    X = make_data(n_samples, n_features)
    print(f"data: {n_samples:,} x {n_features} float32 ({X.nbytes / 2**30:.2f} GiB); "
          f"n_components={n_components}; torch threads={torch.get_num_threads()}")

    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    fns = {
        "sklearn": lambda: SkPCA(n_components, svd_solver="covariance_eigh").fit(X),
        "neuroml": lambda: PCA(n_components, svd_solver="covariance_eigh", device=device).fit(X),
    }
    best, _, fitted = interleaved(fns, repeats, sync, warmup=True)
    (t_sk, sk), (t_ours, ours) = ((best[k], fitted[k]) for k in ("sklearn", "neuroml"))
    print(f"sklearn PCA(covariance_eigh)      : {t_sk:8.3f} s")
    print(f"neuroml PCA(covariance_eigh, {device}): {t_ours:8.3f} s   (from the NumPy array)")
    result = {"n_samples": n_samples, "n_features": n_features, "device": str(ours.device_),
              "sklearn_s": t_sk, "neuroml_s": t_ours, "ratio": t_sk / t_ours}
    if float64_peer:
        X64 = X.astype(np.float64)
        t_sk64 = interleaved(
            {"sk64": lambda: SkPCA(n_components, svd_solver="covariance_eigh").fit(X64)},
            repeats, warmup=True)[0]["sk64"]
        del X64
        print(f"sklearn PCA(covariance_eigh), float64 copy: {t_sk64:8.3f} s "
              f"(ratio to neuroml float32: {t_sk64 / t_ours:.2f}x)")
        result["sklearn_float64_s"] = t_sk64
    if sync is not None:
        Xd = torch.from_numpy(X).to(device)
        t_dev = interleaved(
            {"dev": lambda: PCA(n_components, svd_solver="covariance_eigh", device=device).fit(Xd)},
            repeats, sync, warmup=True)[0]["dev"]
        print(f"neuroml PCA(covariance_eigh, {device}): {t_dev:8.3f} s   (tensor already on the GPU)")
        result["neuroml_on_device_s"] = t_dev
        result["ratio_on_device"] = t_sk / t_dev

    # Agreement. The reference is a float64 two-pass covariance in NumPy (chunks of
    # rows cast to float64 and centred on the float64 mean), decomposed by LAPACK.
    ref_mean, ref_var, ref_vec = reference_spectrum(X, n_components)
    top = 20  # the planted signal's components (the rest is isotropic noise)

    def errors(est):
        rel = np.abs(est.explained_variance_ - ref_var) / ref_var
        angle = float(np.max(scipy.linalg.subspace_angles(est.components_[:top].T,
                                                          ref_vec[:top].T)))
        return float(rel.max()), float(rel[:top].max()), angle

    ours_err, sk_err = errors(ours), errors(sk)
    for name, (rel_all, rel_top, angle) in (("neuroml", ours_err), ("sklearn", sk_err)):
        print(f"{name:8s} vs float64 reference: explained variance max rel. error "
              f"{rel_all:.1e} (top {top}: {rel_top:.1e}); largest principal angle "
              f"(top {top}) {angle:.1e} rad")
    both = np.abs(ours.explained_variance_ - sk.explained_variance_) / sk.explained_variance_
    print(f"neuroml vs sklearn: explained variance max rel. difference {both[:top].max():.1e} "
          f"(top {top}), {both.max():.1e} (all {n_components})")
    # neuroml is exact to float32 round-off; sklearn's float32 covariance_eigh forms
    # X^T X - n mean mean^T in float32 and loses digits to cancellation (offset data).
    assert ours_err[0] < 1e-4 and ours_err[2] < 1e-3, ours_err
    # Sanity check that both computed the same thing, on the leading components where
    # scikit-learn's float32 round-off is still small.
    np.testing.assert_allclose(ours.explained_variance_[:10], sk.explained_variance_[:10],
                               rtol=1e-2)
    mean_err = {name: float(np.max(np.abs(est.mean_ - ref_mean) / np.abs(ref_mean)))
                for name, est in (("neuroml", ours), ("sklearn", sk))}
    print(f"mean_ max rel. error vs float64: neuroml {mean_err['neuroml']:.1e}, "
          f"sklearn {mean_err['sklearn']:.1e}")
    assert mean_err["neuroml"] < 1e-5, mean_err
    result.update(neuroml_max_rel_error=ours_err[0], sklearn_max_rel_error=sk_err[0],
                  neuroml_angle=ours_err[2], sklearn_angle=sk_err[2])
    print(f"ratio sklearn / neuroml = {result['ratio']:.2f}x"
          + (f"  (on-device: {result['ratio_on_device']:.2f}x)" if "ratio_on_device" in result else ""))
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=1_000_000)
    parser.add_argument("--n-features", type=int, default=512)
    parser.add_argument("--n-components", type=int, default=50)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--float64-peer", action="store_true",
                        help="also time scikit-learn on a float64 copy of the data")
    args = parser.parse_args()
    main(args.n_samples, args.n_features, args.n_components, args.device, args.repeats,
         args.float64_peer)
