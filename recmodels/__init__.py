"""PyTorch sequential recommenders whose item tables come from any embedding matrix."""

from .data import FilterReport, SequenceData, build_sequences
from .readers import load_folder, read_recbole
from .evaluation import evaluate
from .item_table import AdapterTable, AlphaFuseTable, ItemTable, TrainableTable
from .metrics import ranking_metric_sums
from .models import BERT4Rec, GRU4Rec, SASRec, SequentialRecommender
from .trainer import Trainer, TrainingDivergedError, TrainResult

__all__ = [
    "AdapterTable",
    "AlphaFuseTable",
    "BERT4Rec",
    "FilterReport",
    "GRU4Rec",
    "ItemTable",
    "SASRec",
    "SequenceData",
    "SequentialRecommender",
    "TrainResult",
    "Trainer",
    "TrainableTable",
    "TrainingDivergedError",
    "build_sequences",
    "evaluate",
    "load_folder",
    "ranking_metric_sums",
    "read_recbole",
]
