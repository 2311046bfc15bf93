"""ACETransformer against the reference (full thin SVD) and one ``E.T @ E`` as the floor.

Prints seconds (median over repeats) and peak memory beyond the input for each, side by
side, in one run, on a synthetic anisotropic float32 matrix. Also prints the two steps that
any method built on the Gram matrix needs on top of the floor (the top-k eigenproblem of
the ``d x d`` Gram, solved by LAPACK in float32, and the projection ``E @ P``), which bound
the speed-up over the reference that such a method can reach on this machine, and how far
ACE's output is from the reference's (``X X^T`` on a sample of rows).

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_ace.py              # 50,000 x 3,072
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_ace.py --rows 200000 --cols 4096
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from scipy import linalg  # noqa: E402

from ace_transform import ACETransformer  # noqa: E402


def synthetic_embeddings(n_rows: int, n_cols: int, seed: int = 0) -> np.ndarray:
    """Unit-norm rows with a decaying spectrum and a common offset, like LLM embeddings."""
    rng = np.random.default_rng(seed)
    E = rng.standard_normal((n_rows, n_cols), dtype=np.float32)
    E *= np.geomspace(1.0, 0.01, n_cols, dtype=np.float32)
    E += np.float32(0.02)
    E /= np.linalg.norm(E, axis=1, keepdims=True)
    return E


def reference(E: np.ndarray, k: int, lam: float, gamma: float) -> np.ndarray:
    """The seed paper's formula on a full thin SVD, with ACE's sign convention.

    Each kept left singular vector is flipped so that its column sum is non-negative, as
    ``ACETransformer`` documents; without it the global ``std`` (and so the scale) would
    depend on LAPACK's arbitrary signs. The flip costs O(n k), nothing next to the SVD.
    """
    U, S, _ = np.linalg.svd(E, full_matrices=False)
    U = U[:, :k] * np.sign(U[:, :k].sum(axis=0))
    X = U * np.sqrt(S[:k] ** 2 / (S[:k] ** 2 + lam))
    return X * gamma / X.std()


def measure(fn, repeats: int, keep: dict | None = None):
    """Median seconds over repeats and peak bytes allocated beyond what existed before.

    The last output is stored in ``keep["out"]`` when ``keep`` is given.
    """
    times, peak = [], 0
    for _ in range(repeats):
        tracemalloc.start()
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        if keep is not None:
            keep["out"] = out
        del out
    return statistics.median(times), peak, times


def gram_relative_error(X: np.ndarray, X_ref: np.ndarray, n_rows: int, seed: int = 0) -> float:
    """Relative Frobenius distance of ``X X^T`` from ``X_ref X_ref^T`` on sampled rows.

    ``X X^T`` does not depend on the signs of the singular vectors or on rotations inside
    (near-)equal singular values, so it compares two correct answers as equal.
    """
    rows = np.random.default_rng(seed).choice(X.shape[0], min(n_rows, X.shape[0]), replace=False)
    A, B = X[rows].astype(np.float64), X_ref[rows].astype(np.float64)
    return float(np.linalg.norm(A @ A.T - B @ B.T) / np.linalg.norm(B @ B.T))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--cols", type=int, default=3_072)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-repeats", type=int, default=1)
    parser.add_argument("--skip-reference", action="store_true")
    args = parser.parse_args()

    E = synthetic_embeddings(args.rows, args.cols)
    input_bytes = E.nbytes
    print(f"E: {args.rows} x {args.cols} float32 ({input_bytes / 2**20:.0f} MiB), k={args.k}, "
          f"threads: OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, cores={os.cpu_count()}")

    ace = ACETransformer(n_components=args.k, lam=50.0, gamma=0.1)
    ace_out, reference_out = {}, {}
    rows = {
        "floor: E.T @ E": measure(lambda: E.T @ E, args.repeats),
        "ACETransformer.fit_transform": measure(
            lambda: ace.fit_transform(E), args.repeats, ace_out
        ),
    }
    # The two steps a Gram-based method adds to the floor, each at its fastest.
    gram32 = E.T @ E  # float32, as E is
    subset = [args.cols - args.k, args.cols - 1]
    bound_parts = {
        "  top-k eigh of the Gram (f32)": measure(
            lambda: linalg.eigh(gram32, subset_by_index=subset, check_finite=False),
            args.repeats,
        ),
        "  projection E @ P": measure(lambda: E @ ace.projection_.astype(np.float32), args.repeats),
    }
    rows.update(bound_parts)
    del gram32
    if not args.skip_reference:
        rows["reference: svd + formula"] = measure(
            lambda: reference(E, args.k, 50.0, 0.1), args.reference_repeats, reference_out
        )

    floor = rows["floor: E.T @ E"][0]
    ace_time = rows["ACETransformer.fit_transform"][0]
    print(f"\n{'method':32s} {'median s':>9s} {'runs':>22s} {'peak extra MiB':>15s} "
          f"{'peak / input':>13s}")
    for name, (median, peak, times) in rows.items():
        runs = ",".join(f"{t:.2f}" for t in times)
        print(f"{name:32s} {median:9.2f} {runs:>22s} {peak / 2**20:15.0f} "
              f"{(input_bytes + peak) / input_bytes:13.2f}")
    bound = floor + sum(median for median, _, _ in bound_parts.values())
    print(f"\nACE / floor: {ace_time / floor:.2f}x (target <= 3)")
    print(f"lower bound for a Gram-based method: floor + eigh + projection = {bound:.2f} s "
          f"({bound / floor:.2f}x the floor)")
    if "reference: svd + formula" in rows:
        reference_time = rows["reference: svd + formula"][0]
        print(f"reference / ACE: {reference_time / ace_time:.1f}x (target >= 20); "
              f"reference / lower bound: {reference_time / bound:.1f}x")
        error = gram_relative_error(ace_out["out"], reference_out["out"], 2_000)
        print(f"ACE vs reference, X X^T on 2,000 sampled rows: relative error {error:.1e} "
              "(target <= 1e-3)")
    print("peak / input counts the input itself plus the largest extra allocation "
          "(target < 2)")


if __name__ == "__main__":
    main()
