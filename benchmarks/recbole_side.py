"""RecBole 1.2.1's side of ``bench_train.py``: its settings and one timed training run.

Runs in RecBole's own virtual environment (``--worker recbole``); imports RecBole and torch
only inside :func:`run_recbole`, and nothing of ours but :mod:`beauty_setup`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from beauty_setup import (
    SETTINGS,
    k_core,
    peak_gpu_mib,
    peak_rss_mib,
    read_interactions,
    synchronize,
)

RECBOLE_MODELS = {"sasrec": "SASRec", "gru4rec": "GRU4Rec", "bert4rec": "BERT4Rec"}


def recbole_config(backbone: str, folder: Path, args) -> dict:
    """RecBole 1.2.1 settings for ``backbone``, with the keys of its model files.

    Parameters
    ----------
    backbone : {"sasrec", "gru4rec", "bert4rec"}
    folder : Path
        Holds ``beauty/beauty.inter``; checkpoints go below it.
    args : Namespace
        The command line (``epochs``).

    Returns
    -------
    dict
        ``config_dict`` for ``recbole.config.Config``.
    """
    s = {**SETTINGS, **({"hidden_dropout": 0.0, "attn_dropout": 0.0, "gru_dropout": 0.0}
                        if args.no_dropout else {})}
    transformer = {"n_layers": s["layers"], "n_heads": s["heads"], "hidden_size": s["hidden"],
                   "inner_size": s["inner"], "hidden_dropout_prob": s["hidden_dropout"],
                   "attn_dropout_prob": s["attn_dropout"], "hidden_act": "gelu",
                   "layer_norm_eps": 1e-12, "initializer_range": 0.02}
    model = {"sasrec": transformer,
             "gru4rec": {"embedding_size": s["hidden"], "hidden_size": s["gru_hidden"],
                         "num_layers": s["gru_layers"], "dropout_prob": s["gru_dropout"]},
             "bert4rec": {**transformer, "mask_ratio": s["mask_ratio"],
                          "ft_ratio": s["ft_ratio"], "transform": "mask_itemseq"}}[backbone]
    core = f"[{k_core(args)},inf)"
    return {
        "data_path": str(folder), "checkpoint_dir": str(folder / "saved"),
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id", "TIME_FIELD": "timestamp",
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "user_inter_num_interval": core, "item_inter_num_interval": core,
        "MAX_ITEM_LIST_LENGTH": s["max_len"], **model,
        "loss_type": "CE", "train_neg_sample_args": None, "train_batch_size": s["batch"],
        "eval_batch_size": 1024, "learning_rate": s["lr"], "epochs": args.epochs,
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full",
                      "group_by": "user"},
        "metrics": ["Recall", "NDCG"], "topk": [10, 20], "valid_metric": "NDCG@10",
        "device": args.device, "use_gpu": args.device == "cuda", "seed": args.seed,
        "reproducibility": True,
        "show_progress": False, "log_wandb": False,
    }


def run_recbole(args) -> dict:
    """Train ``args.backbone`` in RecBole 1.2.1; per-epoch times, NDCG@10 and peak RSS."""
    import numpy as np

    # RecBole 1.2.1 still uses aliases that NumPy 2 removed.
    np.float_, np.complex_, np.unicode_ = np.float64, np.complex128, np.str_
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp())
    frame = read_interactions(args.data, args.users).rename(columns={
        "user_id": "user_id:token", "item_id": "item_id:token", "position": "timestamp:float"})
    (folder / "beauty").mkdir(parents=True)
    frame.to_csv(folder / "beauty" / "beauty.inter", sep="\t", index=False)
    config = Config(model=RECBOLE_MODELS[args.backbone], dataset="beauty",
                    config_dict=recbole_config(args.backbone, folder, args))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, _ = data_preparation(config, dataset)
    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    epochs, evals, scores = [], [], []
    for epoch in range(args.epochs):
        start = time.perf_counter()
        trainer._train_epoch(train_data, epoch, show_progress=False)
        synchronize(args.device)
        epochs.append(time.perf_counter() - start)
        start = time.perf_counter()
        _, result = trainer._valid_epoch(valid_data, show_progress=False)
        synchronize(args.device)
        evals.append(time.perf_counter() - start)
        scores.append(float(result["ndcg@10"]))
    return {"framework": "RecBole 1.2.1", "epoch_s": epochs, "eval_s": evals,
            "valid_ndcg@10": scores, "peak_rss_mib": peak_rss_mib(),
            **peak_gpu_mib(args.device),
            "users": int(dataset.user_num - 1), "items": int(dataset.item_num - 1)}
