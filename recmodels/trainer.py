"""Training loop: device, seeding, optimiser, early stopping, checkpoints and resume."""

from __future__ import annotations

import copy
import gc
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoint, distributed
from ._validation import check_trainer_arguments, usable_device
from ._validation import resolve_device  # noqa: F401 (public as recmodels.trainer's)
from .data import SequenceData
from .errors import CheckpointMismatchError, TrainingDivergedError
from .evaluation import mean_metrics
from .metrics import DEFAULT_KS
from .models._threads import training_step_threads
from .models.base import SequentialRecommender
from .provenance import fingerprint, module_settings, sequence_digest, settings_diff, state_digest


# Windows are sorted by length within chunks of this many batches: enough randomness in
# each batch, little padding.
SORTISH_BATCHES = 32
# Settings that decide only where a run stops: a checkpoint resumes under other values.
STOPPING_SETTINGS = ("trainer.max_epochs", "trainer.patience")
# CPU fused Adam arrived in torch 2.4.
FUSED_ADAM_CPU = torch.torch_version.TorchVersion(torch.__version__) >= (2, 4)


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`.

    Attributes
    ----------
    best_epoch : int
        Epoch with the best validation metric (its weights are restored).
    epochs_run : int
    best_valid : dict of str to float
        Validation metrics at ``best_epoch``.
    test : dict of str to float
        Test metrics of the restored model (empty when test evaluation was skipped).
    history : list of dict
        Per epoch: loss, seconds, training seconds and validation metrics.
    seconds : float
        Training and validation time over all epochs, resumed runs included.
    settings : dict
        Everything that decided the run (:meth:`Trainer.settings`), JSON-ready.
    fingerprint : str
        Digest of ``settings``: equal fingerprints, equal runs.
    valid_ranks, test_ranks : ndarray of shape (n_users,) or None
        0-based rank of each user's target at ``best_epoch`` (validation) and for the
        restored model (test), for per-user metrics and significance tests.

    Examples
    --------
    >>> from recmodels import build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions()
    >>> from recmodels import SASRec, TrainableTable, Trainer
    >>> data = build_sequences(log, k_core=1)
    >>> model = SASRec(TrainableTable(data.n_items, 16), max_len=5, inner_size=16)
    >>> result = Trainer(model, data, max_epochs=3, verbose=False).fit()
    >>> len(result.history), 1 <= result.best_epoch <= 3
    (3, True)
    """

    best_epoch: int
    epochs_run: int
    best_valid: dict[str, float]
    test: dict[str, float]
    history: list[dict[str, float]] = field(repr=False)
    seconds: float = 0.0
    settings: dict = field(default_factory=dict, repr=False)
    fingerprint: str = ""
    valid_ranks: np.ndarray | None = field(default=None, repr=False)
    test_ranks: np.ndarray | None = field(default=None, repr=False)


class Trainer:
    """Train a sequential recommender with early stopping on validation NDCG@10.

    Parameters
    ----------
    model : SequentialRecommender
        The model (moved to ``device`` by the trainer). A new run first redraws its initial
        weights from ``seed`` (``model.reset_parameters()``; tables built from a matrix
        return to that matrix) unless ``reset_parameters=False``.
    data : SequenceData
        Sequences with the leave-one-out split.
    lr : float, default=1e-3
    batch_size : int, default=256
        Training examples per step, as in RecBole: next-item targets for causal models
        (a window carries one per position), windows for BERT4Rec.
    max_epochs : int, default=400
    patience : int, default=10
        Epochs without a better validation score before stopping.
    metric : str, default="ndcg@10"
        Validation metric for early stopping (never a test metric).
    ks : sequence of int, default=(1, 5, 10, 20, 50)
    mask_seen : bool, default=False
        Mask items already seen when evaluating (the seed paper does not).
    device : str, default="auto"
        ``"auto"``: CUDA with bfloat16 autocast when present, the CPU otherwise. A CUDA
        device that this torch can not reach is a ``ValueError`` here, not at the first
        step.
    seed : int, default=0
        Seeds the model's initial weights, shuffling, masking and dropout: two runs with
        the same seed repeat exactly on the CPU, however the model was built.
    checkpoint_path : str or Path, optional
        Written atomically after every epoch, with the run's :meth:`settings`. An existing
        one is resumed from when it was written under the same settings (``max_epochs``
        and ``patience`` may differ: they decide only where the run stops); otherwise
        :class:`CheckpointMismatchError` names the settings that differ.
    weight_decay : float, default=0.0
    eval_batch_size : int, default=1024
    verbose : bool, default=True
        Print one line per epoch to stderr.
    window_stride : int, default=1
        Causal models: 1 trains every target with exactly the prefix protocol's context;
        larger values trade some context on long sequences for speed (see
        :func:`~recmodels.batching.causal_windows`).
    reset_parameters : bool, default=True
        Redraw the model's initial weights from ``seed`` at the start of a new run; False
        trains the weights as given (fine-tuning a trained model).
    restart : bool, default=False
        Start over even when ``checkpoint_path`` holds a run (it is overwritten).

    Notes
    -----
    Under ``torchrun --nproc_per_node=N`` the trainer joins the process group (initialising
    it from the environment unless the script did), each rank trains its share of every
    epoch's batches under DistributedDataParallel on ``cuda:LOCAL_RANK`` or the CPU, only
    rank 0 logs and writes checkpoints, and every rank evaluates a share of the users and
    gets all ranks (:mod:`recmodels.distributed`; the "Scaling out" guide).

    Examples
    --------
    >>> from recmodels import SASRec, TrainableTable, Trainer, build_sequences
    >>> from recmodels.datasets import make_interactions
    >>> log = make_interactions()
    >>> data = build_sequences(log, k_core=1)
    >>> model = SASRec(TrainableTable(data.n_items, 16), max_len=5, inner_size=16)
    >>> result = Trainer(model, data, max_epochs=2, verbose=False).fit()
    >>> result.epochs_run, sorted(result.test)[:2]
    (2, ['ndcg@1', 'ndcg@10'])
    """

    def __init__(self, model: SequentialRecommender, data: SequenceData, *, lr: float = 1e-3,
                 batch_size: int = 256, max_epochs: int = 400, patience: int = 10,
                 metric: str = "ndcg@10", ks: Sequence[int] = DEFAULT_KS,
                 mask_seen: bool = False, device: str = "auto", seed: int = 0,
                 checkpoint_path: str | Path | None = None, weight_decay: float = 0.0,
                 eval_batch_size: int = 1024, verbose: bool = True,
                 window_stride: int = 1, reset_parameters: bool = True,
                 restart: bool = False) -> None:
        check_trainer_arguments(model, data, lr=lr, batch_size=batch_size,
                                max_epochs=max_epochs, patience=patience, ks=ks,
                                weight_decay=weight_decay, eval_batch_size=eval_batch_size,
                                window_stride=window_stride, seed=seed)
        name, _, k = metric.partition("@")
        if name not in ("recall", "ndcg") or not k.isdigit() or int(k) not in ks:
            raise ValueError(f"metric={metric!r} must be 'recall@K' or 'ndcg@K' with K in {ks}.")
        self.model, self.data = model, data
        self.lr, self.batch_size, self.max_epochs = lr, batch_size, max_epochs
        self.patience, self.metric, self.ks = patience, metric, tuple(ks)
        self.mask_seen, self.seed, self.weight_decay = mask_seen, seed, weight_decay
        self.device = distributed.setup(usable_device(device))
        self.checkpoint_path = None if checkpoint_path is None else Path(checkpoint_path)
        self.eval_batch_size, self.verbose = eval_batch_size, verbose
        self.window_stride = window_stride
        self.reset_parameters, self.restart = reset_parameters, restart

    def _log(self, message: str) -> None:
        if self.verbose and distributed.is_main():
            print(message, file=sys.stderr, flush=True)

    def _autocast(self):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                              enabled=self.device.type == "cuda")

    def rank(self, split: str = "valid") -> np.ndarray:
        """Rank of every user's ``split`` target under the model as it is now (all ranks')."""
        with self._autocast():
            return distributed.rank_targets(self.model, self.data, split,
                                            mask_seen=self.mask_seen,
                                            batch_size=self.eval_batch_size, device=self.device)

    def evaluate(self, split: str = "valid") -> dict[str, float]:
        """Metrics of the model as it is now on ``"valid"`` or ``"test"``."""
        return mean_metrics(self.rank(split), self.ks)

    def settings(self) -> dict:
        """Everything that decides this run's outcome, JSON-ready.

        The trainer's settings, every scalar setting of the model's modules, a digest of
        the model's weights as they are now (call it before training: the initial weights),
        a digest of the data and the package version. A distributed run adds its
        ``world_size`` (each step then averages that many batches); one process records
        none, so fingerprints and checkpoints of earlier versions still hold.
        """
        from ace_transform import __version__

        return {
            "trainer": {"lr": self.lr, "batch_size": self.batch_size,
                        "max_epochs": self.max_epochs, "patience": self.patience,
                        "metric": self.metric, "ks": list(self.ks),
                        "mask_seen": self.mask_seen, "seed": self.seed,
                        "weight_decay": self.weight_decay,
                        "window_stride": self.window_stride, "device": self.device.type,
                        **({"world_size": distributed.world_size()}
                           if distributed.world_size() > 1 else {})},
            "model": module_settings(self.model),
            "initial_weights": state_digest(self.model.state_dict()),
            "data": sequence_digest(self.data),
            "version": __version__,
        }

    def _epoch_batches(self, windows: torch.Tensor, generator: torch.Generator):
        """Random batches of about ``batch_size`` training examples, sorted by length.

        Windows are shuffled, cut into mega-chunks of ~``SORTISH_BATCHES`` batches, sorted by
        length inside each chunk (so each batch is trimmed to little padding), then grouped by
        their cumulative number of examples; the batch order is shuffled again.
        """
        n_windows = windows.shape[0]
        weights = self.model.window_weights(windows)
        lengths = (windows[:, 0] > 0).sum(dim=1)
        order = torch.randperm(n_windows, generator=generator)
        per_batch = max(1.0, self.batch_size / max(float(weights.float().mean()), 1e-9))
        sortish = SORTISH_BATCHES if self.model.sort_by_length else 0
        chunk = torch.arange(n_windows) // max(1, int(per_batch * sortish))
        order = order[torch.argsort(chunk * (windows.shape[-1] + 1) + lengths[order], stable=True)]
        batch_id = (torch.cumsum(weights[order], 0) - 1).clamp(min=0) // self.batch_size
        counts = torch.unique_consecutive(batch_id, return_counts=True)[1]
        batches = torch.split(order, counts.tolist())
        return [batches[i] for i in torch.randperm(len(batches), generator=generator)]

    def _train_epoch(self, windows: torch.Tensor, optimizer, epoch: int,
                     train_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> float:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        self.model.train()
        total, steps = torch.zeros((), device=self.device), 0
        # Every rank builds the same list from the same generator and trains its share.
        for rows in distributed.shard_batches(self._epoch_batches(windows, generator)):
            batch = windows[rows].to(self.device)
            items, targets = self.model.training_batch(batch, generator)
            work = items.numel() * self.model.hidden_size  # thin steps run on one thread
            with training_step_threads(self.device, work):
                with self._autocast():
                    loss = train_loss(items, targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            total += loss.detach()
            steps += 1
        # The mean over ranks: a divergence on one rank stops every rank alike.
        mean_loss = distributed.mean_over_ranks(float(total) / max(steps, 1), self.device)
        if not math.isfinite(mean_loss):
            raise TrainingDivergedError(
                f"the training loss became {mean_loss} in epoch {epoch}; lower the learning "
                f"rate (lr={self.lr}) or the scale of the initial item table. The last good "
                f"checkpoint{'' if self.checkpoint_path is None else f' ({self.checkpoint_path})'}"
                " is kept.", epoch=epoch)
        return mean_loss

    def _run_epoch(self, state: dict, windows: torch.Tensor, optimizer: torch.optim.Optimizer,
                   train_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   settings: dict) -> None:
        """Train one epoch, validate, update ``state`` and write the checkpoint."""
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        try:
            loss = self._train_epoch(windows, optimizer, epoch, train_loss)
        except TrainingDivergedError as error:
            error.history = list(state["history"])
            error.seconds = state["seconds"] + time.perf_counter() - started
            raise
        trained = time.perf_counter()
        ranks = self.rank("valid")
        valid = mean_metrics(ranks, self.ks)
        score = valid[self.metric]
        improved = score > state["best_score"]
        if improved:
            state.update(best_score=score, best_epoch=epoch, bad_epochs=0, best_ranks=ranks,
                         best_model=copy.deepcopy(self.model.state_dict()))
        else:
            state["bad_epochs"] += 1
        seconds = time.perf_counter() - started
        state["seconds"] += seconds
        state["history"].append({"epoch": epoch, "loss": loss, "seconds": seconds,
                                 "train_seconds": trained - started, **valid})
        state["epoch"] = epoch
        self._log(f"epoch {epoch:3d}  loss {loss:.4f}  valid {self.metric} {score:.4f}"
                  f"{'  *' if improved else ''}  {seconds:.1f}s")
        if self.checkpoint_path is not None:
            # Gathering the ranks' RNG states is a collective; rank 0 alone writes.
            rng = checkpoint.rng_states()
            if distributed.is_main():
                checkpoint.save_atomic(
                    {"settings": settings, "resume_key": self._resume_key(settings),
                     "model": self.model.state_dict(), "optimizer": optimizer.state_dict(),
                     **rng, "trainer": state}, self.checkpoint_path)
            distributed.barrier()

    def _resume_key(self, settings: dict) -> str:
        return fingerprint({k: v for k, v in settings.items() if k != "trainer"}
                           | {"trainer": {k: v for k, v in settings["trainer"].items()
                                          if f"trainer.{k}" not in STOPPING_SETTINGS}})

    def _load_checkpoint(self, settings: dict) -> dict | None:
        """The saved run to resume, or None; refuses one written under other settings."""
        path = self.checkpoint_path
        if path is None or not path.exists() or self.restart:
            return None
        saved = checkpoint.load(path, self.device)
        if saved.get("resume_key") != self._resume_key(settings):
            differences = (settings_diff(saved["settings"], settings, ignore=STOPPING_SETTINGS)
                           if "settings" in saved else ["(written by an older version)"])
            raise CheckpointMismatchError(
                f"{path} holds a run made under other settings ({'; '.join(differences[:6])}"
                f"{'; ...' if len(differences) > 6 else ''}). Delete it, point "
                "checkpoint_path elsewhere, or pass restart=True to start over."
            )
        return saved

    def fit(self, *, evaluate_test: bool = True) -> TrainResult:
        """Train until early stopping, restore the best weights, evaluate test once.

        ``evaluate_test=False`` skips the test split (``TrainResult.test`` is then empty),
        as model selection must never look at it.
        """
        torch.manual_seed(self.seed)
        np.random.seed(self.seed)
        if self.reset_parameters:
            self.model.reset_parameters()
        distributed.seed_rank(self.seed)
        self.model.to(self.device)
        settings = self.settings()
        optimizer = torch.optim.Adam(
            [p for p in self.model.parameters() if p.requires_grad], lr=self.lr,
            weight_decay=self.weight_decay, fused=self.device.type == "cuda" or FUSED_ADAM_CPU,
        )
        windows = self.model.training_windows(self.data, self.window_stride)
        state = {"epoch": 0, "best_score": -math.inf, "best_epoch": 0, "bad_epochs": 0,
                 "history": [], "best_model": None, "best_ranks": None, "seconds": 0.0}
        saved = self._load_checkpoint(settings)
        if saved is not None:
            self.model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            checkpoint.restore_rng_states(saved)
            state = saved["trainer"]
            self._log(f"resuming from {self.checkpoint_path} after epoch {state['epoch']}")
        train_loss = distributed.training_loss(self.model, self.device)
        try:
            while state["epoch"] < self.max_epochs and state["bad_epochs"] < self.patience:
                self._run_epoch(state, windows, optimizer, train_loss, settings)
        finally:
            # The DDP wrapper sits in a reference cycle: freed here, its reducer goes while
            # the process group is up (at exit, after the group, gloo can abort the process).
            del train_loss
            if distributed.world_size() > 1:
                gc.collect()
        if state["best_model"] is not None:
            self.model.load_state_dict(state["best_model"])
        best_valid = next((h for h in state["history"] if h["epoch"] == state["best_epoch"]), {})
        test_ranks = self.rank("test") if evaluate_test else None
        test = {} if test_ranks is None else mean_metrics(test_ranks, self.ks)
        shown = test or best_valid
        self._log(f"best epoch {state['best_epoch']}: {'test' if test else 'valid'} "
                  + ", ".join(f"{k} {shown[k]:.4f}" for k in
                              ("recall@10", "ndcg@10", "recall@20", "ndcg@20") if k in shown))
        return TrainResult(
            best_epoch=state["best_epoch"], epochs_run=state["epoch"],
            best_valid={k: v for k, v in best_valid.items() if "@" in k}, test=test,
            history=state["history"], seconds=state["seconds"], settings=settings,
            fingerprint=fingerprint(settings), valid_ranks=state["best_ranks"],
            test_ranks=test_ranks,
        )
