"""Training speed: recmodels against RecBole 1.2.1 on SASRec, GRU4Rec and BERT4Rec.

Every framework x backbone pair trains in its own subprocess (RecBole from its own virtual
environment, never a dependency of ours), one after the other, so that peak memory is
measured separately; both sides read the same interaction file, split it the same way
(leave-one-out) and train with the same settings. Both rank every item, with only the
padding item removed: ours with ``mask_seen=False``, RecBole 1.2.1 because its full-sort
loader builds no user history for sequential models. The NDCG@10 columns therefore compare
like with like.

Prints one row per backbone x framework (median seconds per training epoch, full-sort
validation of all users in seconds, peak RSS, validation NDCG@10 after each epoch), then
per backbone the speed-ups (RecBole / ours) and our times as multiples of a floor: the
matmul flops an epoch needs, counted over real (non-padding) tokens and targets only
(:func:`forward_flops`; forward and backward = 3 x forward), divided by the GEMM rate that
``torch.mm`` reaches in the same run with the same number of threads (the faster of the
logit shape and a square 1024 product). The evaluation floor is one forward over every
user's last ``max_len`` items plus the users x items logit matmul. ``--json`` also writes
the rows, so that docs can quote them.

    python -m venv .recbole-venv && .recbole-venv/bin/pip install torch==2.13.0 recbole==1.2.1
    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_train.py --epochs 2 --json bench_train.json
    python benchmarks/bench_train.py --users 300 --epochs 1 --threads 1   # smoke check

``--device cuda`` runs both sides on the GPU: ours as ``ace-bench`` trains there (bfloat16
autocast), RecBole as its ``use_gpu`` runs (float32); ``--recbole-python python3`` where
RecBole is installed beside our package, ``--recbole-python none`` for ours alone. The GEMM
rates are then measured on the GPU in both precisions (the floor divides by the faster,
bfloat16's), peak memory is the GPU's (``torch.cuda.max_memory_allocated``), and the SASRec
epoch target is 2 s:

    python benchmarks/bench_train.py --device cuda --epochs 3 --recbole-python python3

``--users N`` keeps the first N users of the interaction file on both sides, without the
5-core filter (which would empty a small slice; the full file is already 5-core).
``--seed S`` seeds both sides (default 0): the NDCG columns move by a few thousandths
between seeds, so one seed cannot rank the two. One side alone, e.g. RecBole's SASRec at
another seed (prints one ``RESULT`` JSON line); ``--no-dropout`` sets every dropout rate to
0 on both sides, to tell dropout's share of a quality gap from the rest:

    .recbole-venv/bin/python benchmarks/bench_train.py --worker recbole --backbones sasrec \
        --epochs 2 --seed 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from beauty_setup import (  # noqa: E402
    DATA,
    SETTINGS,
    id_table,
    k_core,
    peak_gpu_mib,
    peak_rss_mib,
    read_interactions,
    synchronize,
)
from recbole_side import run_recbole  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BACKBONES = ("sasrec", "gru4rec", "bert4rec")
# (what, target, higher is better): printed next to each backbone's figures.
TARGETS = {"sasrec": {"epoch speed-up": 20.0, "ours / floor epoch": 2.0},
           "gru4rec": {"epoch speed-up": 10.0}, "bert4rec": {"epoch speed-up": 10.0}}
EVAL_TARGET = 10.0
GPU_SASREC_EPOCH_TARGET_S = 2.0
GPU_PRODUCTS_PER_TIMING = 100
GEMM_SHAPES = {"logits 256x128 @ 128x12102": (256, 128, 12102),
               "square 1024": (1024, 1024, 1024)}


def forward_flops(backbone: str, lengths, targets: int, n_items: int,
                  s: dict = SETTINGS) -> float:
    """Matmul flops of one forward pass over real tokens, plus the item logits of targets.

    Parameters
    ----------
    backbone : {"sasrec", "gru4rec", "bert4rec"}
    lengths : ndarray of int
        Real (non-padding) tokens of each sequence.
    targets : int
        Positions scored against every item (``targets x n_items`` logits).
    n_items : int
    s : dict, default=SETTINGS
        ``hidden``, ``inner``, ``layers`` (transformers), ``gru_hidden`` (GRU4Rec).

    Returns
    -------
    float
        Per real token: GRU4Rec its GRU's input and recurrent matmuls and the output Linear;
        SASRec and BERT4Rec the q, k, v, o projections and both FFN layers of every layer
        (BERT4Rec also its head Linear), plus per layer the attention scores and weighted
        sums over real keys (the earlier ones for SASRec, all for BERT4Rec); plus
        ``2 x targets x n_items x hidden`` for the logits. Training costs 3 x this.

    Examples
    --------
    >>> import numpy as np
    >>> s = dict(hidden=4, inner=8, layers=1, gru_hidden=4)
    >>> forward_flops("sasrec", np.array([2, 3]), 5, 10, s)  # 5 x 256 + 4 x 4 x 9 + 400
    1824.0
    """
    import numpy as np

    lengths = np.asarray(lengths, dtype=np.float64)
    h = s["hidden"]
    logits = 2.0 * targets * n_items * h
    if backbone == "gru4rec":
        g = s["gru_hidden"]
        return float(lengths.sum() * (2 * h * 3 * g + 2 * g * 3 * g + 2 * g * h) + logits)
    per_token = s["layers"] * (8 * h * h + 4 * h * s["inner"])
    pairs = lengths * lengths if backbone == "bert4rec" else lengths * (lengths + 1) / 2
    per_token += 2 * h * h if backbone == "bert4rec" else 0
    return float(lengths.sum() * per_token + s["layers"] * 4 * h * pairs.sum() + logits)


def count_floor_flops(model, trainer, data, backbone: str, epochs: int):
    """Training flops of each epoch and the flops of one full-sort evaluation.

    Tokens and targets come from the trainer's own training windows. BERT4Rec's targets
    are the cloze masks drawn over each epoch's batches from a generator seeded as the
    trainer seeds it (a fresh draw from the same distribution, should that seeding change).

    Parameters
    ----------
    model, trainer, data
        Our model, its :class:`~recmodels.Trainer` and the data it trained on.
    backbone : str
    epochs : int

    Returns
    -------
    epoch_flops : list of float
    eval_flops : float
    """
    import torch

    from recmodels.batching import eval_batch

    windows = model.training_windows(data)
    lengths = (windows[:, 0] > 0).sum(dim=1).numpy()
    n_targets = []
    for epoch in range(1, epochs + 1):
        if model.causal:
            n_targets.append(int((windows[:, 1] > 0).sum()))
            continue
        generator = torch.Generator().manual_seed(trainer.seed * 1_000_003 + epoch)
        n_targets.append(sum(int((model.training_batch(windows[rows], generator)[1] > 0).sum())
                             for rows in trainer._epoch_batches(windows, generator)))
    context = eval_batch(data, "valid", model.context_len).lengths + (0 if model.causal else 1)
    return ([3 * forward_flops(backbone, lengths, t, data.n_items) for t in n_targets],
            forward_flops(backbone, context, data.n_users, data.n_items))


def run_ours(args) -> dict:
    """Train ``args.backbone`` with recmodels as ``ace-bench`` builds it (ID table)."""
    import torch

    from recmodels import Trainer, build_sequences
    from recmodels.models import BACKBONES as MODELS

    torch.set_num_threads(args.threads)
    s = SETTINGS
    data = build_sequences(read_interactions(args.data, args.users), k_core=k_core(args))
    torch.manual_seed(args.seed)
    # ace-bench's "id" cells: the backbone's defaults, which are SETTINGS.
    model = MODELS[args.backbone](id_table(data, args.backbone), max_len=s["max_len"])
    if args.no_dropout:
        for module in model.modules():
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
            if isinstance(getattr(module, "attn_dropout", None), float):
                module.attn_dropout = 0.0
    trainer = Trainer(model, data, lr=s["lr"], batch_size=s["batch"], max_epochs=args.epochs,
                      patience=args.epochs + 1, seed=args.seed, device=args.device, verbose=False,
                      mask_seen=False)
    history = trainer.fit(evaluate_test=False).history
    peak = peak_rss_mib()
    gpu = peak_gpu_mib(args.device)
    epoch_flops, eval_flops = count_floor_flops(model, trainer, data, args.backbone, args.epochs)
    return {"framework": "recmodels", "epoch_s": [h["train_seconds"] for h in history],
            "eval_s": [h["seconds"] - h["train_seconds"] for h in history],
            "valid_ndcg@10": [h["ndcg@10"] for h in history], "peak_rss_mib": peak, **gpu,
            "users": data.n_users, "items": data.n_items,
            "epoch_gflop": [f / 1e9 for f in epoch_flops], "eval_gflop": eval_flops / 1e9}


def run_gemm(args, repeats: int = 9) -> dict:
    """Median GFLOP/s of ``torch.mm`` at each of :data:`GEMM_SHAPES`.

    Float32 on the CPU, each product timed alone. On CUDA float32 and bfloat16 (what
    autocast trains in), each timing covering :data:`GPU_PRODUCTS_PER_TIMING` products
    queued back to back, so that launch and synchronisation do not count as GEMM time.
    """
    import torch

    torch.set_num_threads(args.threads)
    gpu = args.device == "cuda"
    dtypes = [torch.float32] + ([torch.bfloat16] if gpu else [])
    products = GPU_PRODUCTS_PER_TIMING if gpu else 1
    rates = {}
    for dtype in dtypes:
        for name, (m, k, n) in GEMM_SHAPES.items():
            a, b, out = (torch.randn(*shape, device=args.device, dtype=dtype)
                         for shape in ((m, k), (k, n), (m, n)))
            seconds = []
            for i in range(repeats + 2):
                synchronize(args.device)
                start = time.perf_counter()
                for _ in range(products):
                    torch.mm(a, b, out=out)
                synchronize(args.device)
                seconds.append((time.perf_counter() - start) / products)
            label = name if dtype is torch.float32 else f"{name} bfloat16"
            rates[label] = 2 * m * k * n / statistics.median(seconds[2:]) / 1e9
    return rates


def launch(worker: str, backbone: str, args) -> dict:
    """Run one worker in a fresh process and return the dict it prints."""
    python = str(args.recbole_python) if worker == "recbole" else sys.executable
    command = [python, __file__, "--worker", worker, "--backbones", backbone,
               "--epochs", str(args.epochs), "--threads", str(args.threads),
               "--data", str(args.data), "--seed", str(args.seed), "--device", args.device]
    command += ["--no-dropout"] if args.no_dropout else []
    command += [] if args.users is None else ["--users", str(args.users)]
    # RecBole's side never sees our package; it keeps a PYTHONPATH that holds RecBole itself.
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                 if p and Path(p).resolve() != ROOT]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        inherited if worker == "recbole" else [str(ROOT), *inherited]))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if line is None:
        sys.exit(f"{worker} {backbone} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(line[7:])


def verdict(value: float, target: float, higher: bool = True) -> str:
    """``"12.3x (>= 10x: met)"``-style text."""
    met = value >= target if higher else value <= target
    return f"{value:.1f}x ({'>=' if higher else '<='} {target:g}x: {'met' if met else 'MISSED'})"


def summarise(backbone: str, ours: dict, theirs: dict | None, gemm_rate: float) -> dict:
    """Speed-ups, memory ratio and floors of one backbone.

    Parameters
    ----------
    backbone : str
    ours, theirs : dict
        Rows of :func:`run_ours` and :func:`run_recbole`; ``theirs`` None for ours alone
        (then the floors alone).
    gemm_rate : float
        GFLOP/s that the floors divide by.

    Returns
    -------
    dict
        Memory ratios use the GPU's peak where it was measured, else the peak RSS.
    """
    med = statistics.median
    floor_epoch = med(ours["epoch_gflop"]) / gemm_rate
    floor_eval = ours["eval_gflop"] / gemm_rate
    summary = {"backbone": backbone, "ours_epoch_s": med(ours["epoch_s"]),
               "floor_epoch_s": floor_epoch, "floor_eval_s": floor_eval,
               "ours_over_floor_epoch": med(ours["epoch_s"]) / floor_epoch,
               "ours_over_floor_eval": med(ours["eval_s"]) / floor_eval}
    if theirs is not None:
        memory = "peak_gpu_mib" if "peak_gpu_mib" in ours else "peak_rss_mib"
        summary.update(epoch_speedup=med(theirs["epoch_s"]) / med(ours["epoch_s"]),
                       eval_speedup=med(theirs["eval_s"]) / med(ours["eval_s"]),
                       memory_ours_over_recbole=ours[memory] / theirs[memory])
    return summary


def report(rows: list[dict], summaries: list[dict], gemm: dict, args) -> None:
    """Print the table of rows and each backbone's ratios against their targets."""
    rate = max(gemm.values())
    gpu = args.device == "cuda"
    where = "Beauty" if args.users is None else f"Beauty, first {args.users} users (no 5-core)"
    print(f"{', '.join(r['backbone'] for r in summaries)} on {where}: {args.epochs} epoch(s), "
          + (f"{device_name()} (ours bfloat16 autocast, RecBole float32)" if gpu else
             f"{args.threads} thread(s)")
          + f", batch {SETTINGS['batch']}, lr {SETTINGS['lr']}, "
          f"seed {args.seed}, both sides unmasked (all items ranked)")
    print(f"GEMM rate, torch.mm {'on the GPU' if gpu else 'float32'}: "
          + ", ".join(f"{k} {v:.1f}" for k, v in gemm.items())
          + f" GFLOP/s; the floor divides by the faster, {rate:.1f}")
    memory = "peak GPU MiB" if gpu else "peak RSS MiB"
    print(f"{'backbone':9s} {'framework':14s} {'users':>6s} {'items':>6s} {'s/epoch':>8s} "
          f"{'eval s':>7s} {memory:>12s} {'GFLOP/epoch':>11s}  valid NDCG@10 per epoch")
    med = statistics.median
    for r in rows:
        flop = f"{med(r['epoch_gflop']):11.1f}" if "epoch_gflop" in r else f"{'':11s}"
        peak = r["peak_gpu_mib" if gpu else "peak_rss_mib"]
        print(f"{r['backbone']:9s} {r['framework']:14s} {r['users']:6d} {r['items']:6d} "
              f"{med(r['epoch_s']):8.2f} {med(r['eval_s']):7.2f} {peak:12.0f} "
              f"{flop}  " + ", ".join(f"{v:.4f}" for v in r["valid_ndcg@10"]))
    print(f"{'backbone':9s} {'epoch speed-up':23s} {'eval speed-up':23s} "
          f"{'floor epoch s':>13s} {'ours / floor epoch':22s} {'floor eval s':>12s} "
          f"{'ours / floor eval':>17s}  {memory[5:]} ours / RecBole")
    for m in summaries:
        target = TARGETS[m["backbone"]]
        floor = (verdict(m["ours_over_floor_epoch"], target["ours / floor epoch"], False)
                 if "ours / floor epoch" in target and not gpu
                 else f"{m['ours_over_floor_epoch']:.1f}x")
        if "epoch_speedup" in m:
            versus = (f"{verdict(m['epoch_speedup'], target['epoch speed-up']):23s} "
                      f"{verdict(m['eval_speedup'], EVAL_TARGET):23s}")
            ratio = m["memory_ours_over_recbole"]
            memory_ratio = f"{ratio:.2f} (<= 1: {'met' if ratio <= 1 else 'MISSED'})"
        else:
            versus, memory_ratio = f"{'(no RecBole row)':23s} {'':23s}", "-"
        print(f"{m['backbone']:9s} {versus} {m['floor_epoch_s']:13.3f} "
              f"{floor:22s} {m['floor_eval_s']:12.3f} {m['ours_over_floor_eval']:16.1f}x  "
              f"{memory_ratio}")
        if gpu and m["backbone"] == "sasrec":
            met = m["ours_epoch_s"] <= GPU_SASREC_EPOCH_TARGET_S
            print(f"{'':9s} SASRec epoch on the GPU {m['ours_epoch_s']:.2f} s "
                  f"(<= {GPU_SASREC_EPOCH_TARGET_S:g} s: {'met' if met else 'MISSED'})")


def device_name() -> str:
    """The GPU's name as torch reports it."""
    import torch

    return torch.cuda.get_device_name()


def main() -> None:
    """Parse the command line; run one worker, or every worker and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default=",".join(BACKBONES),
                        help="comma-separated, from " + ", ".join(BACKBONES))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=SETTINGS["seed"])
    parser.add_argument("--no-dropout", action="store_true",
                        help="every dropout rate 0 on both sides (a diagnostic, not the paper's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--users", type=int, help="only the first N users (smoke check)")
    parser.add_argument("--recbole-python", default=str(ROOT / ".recbole-venv/bin/python"),
                        help="the Python that has RecBole 1.2.1; 'none' for our rows alone")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--worker", choices=["recbole", "ours", "gemm"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    backbones = [b for b in args.backbones.split(",") if b]
    unknown = sorted(set(backbones) - set(BACKBONES))
    if unknown:
        parser.error(f"unknown backbone(s) {unknown}; choose from {list(BACKBONES)}")
    if args.worker:
        args.backbone = backbones[0]
        runner = {"recbole": run_recbole, "ours": run_ours, "gemm": run_gemm}[args.worker]
        print("RESULT " + json.dumps(runner(args)), flush=True)
        return

    with_recbole = args.recbole_python.lower() != "none"
    gemm = launch("gemm", backbones[0], args)
    rows, summaries = [], []
    for backbone in backbones:
        ours = dict(launch("ours", backbone, args), backbone=backbone)
        theirs = (dict(launch("recbole", backbone, args), backbone=backbone)
                  if with_recbole else None)
        rows += [ours] + ([theirs] if theirs else [])
        summaries.append(summarise(backbone, ours, theirs, max(gemm.values())))
    report(rows, summaries, gemm, args)
    if args.json:
        args.json.write_text(json.dumps({
            "settings": {**SETTINGS, "seed": args.seed, "epochs": args.epochs,
                         "threads": args.threads, "device": args.device,
                         "users": args.users, "data": str(args.data)},
            "gemm_gflops": gemm, "rows": rows, "summary": summaries}, indent=1) + "\n")


if __name__ == "__main__":
    main()
