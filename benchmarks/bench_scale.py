"""ACE on an on-disk matrix through dask on local workers, against an in-memory NumPy fit.

Writes a synthetic anisotropic float32 matrix (default 2,000,000 x 1,024, 8 GB) to a .npy
file block by block, then:

1. dask: fits ``ACETransformer`` on the file as a dask array on a local
   ``distributed`` cluster (default 2 workers, one thread each), and writes the
   transformed table to another .npy file chunk by chunk (``da.store``), never gathering
   it. Prints the wall time of each step and the peak resident memory (RSS) of the whole
   process tree: this process (which runs the scheduler), the nannies and the workers,
   sampled every 50 ms.
2. NumPy: loads the leading rows that fit in memory (all of them when they fit, or
   ``--numpy-rows``), fits and transforms them in memory, and prints the same figures.
   When both fits saw the same rows it also prints the largest difference of the outputs.

The input and output are read and written with plain file reads and writes (no memory
map), so the figures count the arrays the processes hold, not the file's page cache.

    python benchmarks/bench_scale.py                                  # 2,000,000 x 1,024
    python benchmarks/bench_scale.py --rows 20000 --cols 64 --k 16    # a quick check
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from ace_transform import ACETransformer  # noqa: E402

GB = 1e9


class NpyRows:
    """Rows of a 2-D C-ordered .npy file, read by slicing (``X[a:b]``) without a memory map.

    Pickles as its path and header, so a dask graph that reads from it can be shipped to
    worker processes (``da.from_array`` of a ``np.memmap`` would pickle the whole data).
    """

    ndim = 2

    def __init__(self, path):
        self.path = str(path)
        with open(self.path, "rb") as file:
            version = np.lib.format.read_magic(file)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            self.shape, fortran_order, self.dtype = read_header(file)
            self.offset = file.tell()
        if fortran_order or len(self.shape) != 2:
            raise ValueError(f"{self.path} must hold a 2-D C-ordered array")

    @property
    def row_bytes(self) -> int:
        return self.shape[1] * self.dtype.itemsize

    def __getitem__(self, key):
        rows, columns = key if isinstance(key, tuple) else (key, slice(None))
        start, stop, step = rows.indices(self.shape[0])
        count = max(stop - start, 0)
        with open(self.path, "rb") as file:
            file.seek(self.offset + start * self.row_bytes)
            block = np.fromfile(file, dtype=self.dtype, count=count * self.shape[1])
        return block.reshape(count, self.shape[1])[::step, columns]


class NpyRowWriter(NpyRows):
    """A .npy file of a given shape that ``da.store`` fills by row blocks (``W[a:b] = x``)."""

    def __init__(self, path, shape, dtype):
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
                  "fortran_order": False, "shape": tuple(shape)}
        with open(path, "wb") as file:
            np.lib.format.write_array_header_2_0(file, header)
            file.truncate(file.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize)
        super().__init__(path)

    def __setitem__(self, key, value):
        rows = key[0] if isinstance(key, tuple) else key
        start, stop, _ = rows.indices(self.shape[0])
        block = np.ascontiguousarray(value, dtype=self.dtype)
        if block.shape != (stop - start, self.shape[1]):
            raise ValueError(f"expected whole rows {start}:{stop}, got shape {block.shape}")
        with open(self.path, "r+b") as file:
            file.seek(self.offset + start * self.row_bytes)
            block.tofile(file)


def write_synthetic(path: Path, n_rows: int, n_cols: int, block_rows: int, seed: int = 0):
    """Unit-norm rows with a decaying spectrum and a common offset, written block by block."""
    writer = NpyRowWriter(path, (n_rows, n_cols), np.float32)
    decay = np.geomspace(1.0, 0.01, n_cols, dtype=np.float32)
    for index, start in enumerate(range(0, n_rows, block_rows)):
        rng = np.random.default_rng([seed, index])
        block = rng.standard_normal((min(block_rows, n_rows - start), n_cols), dtype=np.float32)
        block *= decay
        block += np.float32(0.02)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        writer[start : start + block.shape[0]] = block


class PeakTreeMemory:
    """Peak of the summed RSS of this process and all its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.05):
        self.interval, self.peak = interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        root = psutil.Process()
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:  # exited between listing and reading
                pass
        return total

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.sample())


def run_dask(args, source: NpyRows, out_path: Path):
    import dask.array as da
    from distributed import Client, LocalCluster

    times = {}
    with PeakTreeMemory() as memory:
        start = time.perf_counter()
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=args.threads_per_worker,
                               processes=True, dashboard_address=None)
        client = Client(cluster)
        times["cluster start"] = time.perf_counter() - start
        X = da.from_array(source, chunks=(args.chunk_rows, -1),
                          meta=np.empty((0, 0), source.dtype))
        ace = ACETransformer(n_components=args.k, lam=args.lam, gamma=args.gamma)
        start = time.perf_counter()
        ace.fit(X)
        times["fit"] = time.perf_counter() - start
        start = time.perf_counter()
        Z = ace.transform(X)  # lazy
        target = NpyRowWriter(out_path, Z.shape, Z.dtype)
        da.store(Z, target, lock=False)
        times["transform + write"] = time.perf_counter() - start
        client.close()
        cluster.close()
    return ace, times, memory.peak


def run_numpy(args, source: NpyRows, n_rows: int):
    times = {}
    with PeakTreeMemory() as memory:
        start = time.perf_counter()
        E = source[0:n_rows]
        times["load"] = time.perf_counter() - start
        ace = ACETransformer(n_components=args.k, lam=args.lam, gamma=args.gamma)
        start = time.perf_counter()
        ace.fit(E)
        times["fit"] = time.perf_counter() - start
        start = time.perf_counter()
        Z = ace.transform(E)
        times["transform"] = time.perf_counter() - start
        del E
    return ace, Z, times, memory.peak


def rows_that_fit(n_rows: int, row_bytes: int, out_row_bytes: int) -> int:
    """Leading rows whose input and output take at most 60% of the available memory."""
    available = psutil.virtual_memory().available * 0.6
    return int(min(n_rows, available // (row_bytes + out_row_bytes)))


def max_relative_difference(path: Path, Z: np.ndarray, block_rows: int) -> float:
    """max |stored - Z| / max |Z|, reading the stored output block by block."""
    stored = NpyRows(path)
    largest = float(np.abs(Z).max())
    worst = 0.0
    for start in range(0, Z.shape[0], block_rows):
        block = stored[start : start + block_rows]
        worst = max(worst, float(np.abs(block - Z[start : start + block.shape[0]]).max()))
    return worst / largest


def seconds(times: dict) -> str:
    return ", ".join(f"{name} {value:.1f} s" for name, value in times.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--cols", type=int, default=1_024)
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--lam", type=float, default=50.0)
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--chunk-rows", type=int, default=32_768)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--numpy-rows", type=int, default=None,
                        help="rows of the in-memory NumPy fit (default: as many as fit, "
                             "at most --rows; 0 skips it)")
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder for the input and output files (default: a temporary "
                             "folder, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="reuse an existing input file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        folder = args.dir if args.keep and args.dir is not None else Path(scratch)
        in_path = folder / f"E_{args.rows}x{args.cols}.npy"
        out_path = Path(scratch) / "ace_out.npy"
        start = time.perf_counter()
        if not (args.keep and in_path.exists()):
            write_synthetic(in_path, args.rows, args.cols, args.chunk_rows)
        source = NpyRows(in_path)
        if source.shape != (args.rows, args.cols):
            raise SystemExit(f"{in_path} holds {source.shape}, not {(args.rows, args.cols)}")
        n_blocks = -(-args.rows // args.chunk_rows)
        print(f"input: {args.rows:,} x {args.cols:,} float32 on disk "
              f"({args.rows * source.row_bytes / GB:.2f} GB), written in "
              f"{time.perf_counter() - start:.1f} s; k={args.k}, lam={args.lam}, "
              f"gamma={args.gamma}; cores={os.cpu_count()}, "
              f"memory {psutil.virtual_memory().total / GB:.1f} GB")

        ace_dask, dask_times, dask_peak = run_dask(args, source, out_path)
        total = dask_times["fit"] + dask_times["transform + write"]
        print(f"dask, {args.workers} workers x {args.threads_per_worker} thread(s), "
              f"{n_blocks} blocks of {args.chunk_rows:,} rows: {seconds(dask_times)}; "
              f"fit + transform {total:.1f} s")
        print(f"dask peak RSS of the process tree: {dask_peak / GB:.2f} GB "
              f"(input {args.rows * source.row_bytes / GB:.2f} GB; target < 3 GB)")

        out_row_bytes = args.k * source.dtype.itemsize
        n_numpy = (rows_that_fit(args.rows, source.row_bytes, out_row_bytes)
                   if args.numpy_rows is None else min(args.numpy_rows, args.rows))
        if n_numpy <= 0:
            return
        ace_np, Z, numpy_times, numpy_peak = run_numpy(args, source, n_numpy)
        numpy_total = numpy_times["fit"] + numpy_times["transform"]
        print(f"numpy in memory, {n_numpy:,} rows: {seconds(numpy_times)}; "
              f"fit + transform {numpy_total:.1f} s; peak RSS {numpy_peak / GB:.2f} GB")
        per_row = (total / args.rows) / (numpy_total / n_numpy)
        print(f"dask / numpy time per row (fit + transform): {per_row:.2f}x")
        if n_numpy == args.rows:
            difference = max_relative_difference(out_path, Z, args.chunk_rows)
            print(f"same rows: max |dask - numpy| / max |numpy| = {difference:.1e}; "
                  f"scale_ {ace_dask.scale_:.6g} vs {ace_np.scale_:.6g}")


if __name__ == "__main__":
    main()
