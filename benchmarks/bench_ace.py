"""ACETransformer against the reference (full thin SVD) and one ``E.T @ E`` as the floor.

Prints seconds (median over repeats) and peak memory beyond the input for each, side by
side, in one run, on a synthetic anisotropic float32 matrix.

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
    U, S, _ = np.linalg.svd(E, full_matrices=False)
    X = U[:, :k] * np.sqrt(S[:k] ** 2 / (S[:k] ** 2 + lam))
    return X * gamma / X.std()


def measure(fn, repeats: int):
    """Median seconds over repeats and peak bytes allocated beyond what existed before."""
    times, peak = [], 0
    for _ in range(repeats):
        tracemalloc.start()
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        del out
    return statistics.median(times), peak, times


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
    rows = {
        "floor: E.T @ E": measure(lambda: E.T @ E, args.repeats),
        "ACETransformer.fit_transform": measure(lambda: ace.fit_transform(E), args.repeats),
    }
    if not args.skip_reference:
        rows["reference: svd + formula"] = measure(
            lambda: reference(E, args.k, 50.0, 0.1), args.reference_repeats
        )

    floor = rows["floor: E.T @ E"][0]
    ace_time = rows["ACETransformer.fit_transform"][0]
    print(f"\n{'method':32s} {'median s':>9s} {'runs':>22s} {'peak extra MiB':>15s} "
          f"{'peak / input':>13s}")
    for name, (median, peak, times) in rows.items():
        runs = ",".join(f"{t:.2f}" for t in times)
        print(f"{name:32s} {median:9.2f} {runs:>22s} {peak / 2**20:15.0f} "
              f"{(input_bytes + peak) / input_bytes:13.2f}")
    print(f"\nACE / floor: {ace_time / floor:.2f}x (target <= 3)")
    if "reference: svd + formula" in rows:
        speedup = rows["reference: svd + formula"][0] / ace_time
        print(f"reference / ACE: {speedup:.1f}x (target >= 20)")
    print("peak / input counts the input itself plus the largest extra allocation "
          "(target < 2)")


if __name__ == "__main__":
    main()
