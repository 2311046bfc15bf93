"""Backbones: each implements only its sequence encoder."""

from .base import SequentialRecommender
from .bert4rec import BERT4Rec
from .gru4rec import GRU4Rec
from .sasrec import SASRec

BACKBONES = {"sasrec": SASRec, "gru4rec": GRU4Rec, "bert4rec": BERT4Rec}

__all__ = ["BACKBONES", "BERT4Rec", "GRU4Rec", "SASRec", "SequentialRecommender"]
