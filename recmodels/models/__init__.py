"""Backbones: each implements only its sequence encoder."""

from .base import SequentialRecommender
from .bert4rec import BERT4Rec
from .gru4rec import GRU4Rec
from .sasrec import SASRec

__all__ = ["BERT4Rec", "GRU4Rec", "SASRec", "SequentialRecommender"]
