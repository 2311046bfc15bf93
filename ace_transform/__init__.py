"""Reshape LLM item-text embeddings into item tables for sequential recommenders.

scikit-learn transformers (``fit`` / ``transform``) for ACE, whitening, PCA initialisation,
AlphaFuse and Rec-PCA, plus anisotropy diagnostics. This package does not import torch.
"""

from ._ace import ACETransformer
from ._alphafuse import AlphaFuseSplitter
from ._graph import cooccurrence_graph
from ._pca_init import PCAInit
from ._recpca import RecPCA
from ._whitening import WhiteningTransformer
from .diagnostics import (
    anisotropy_report,
    effective_rank,
    mean_pairwise_cosine,
    neighbor_overlap,
    normalized_spectrum,
    top_direction_share,
)

__version__ = "0.1.0"

__all__ = [
    "ACETransformer",
    "AlphaFuseSplitter",
    "PCAInit",
    "RecPCA",
    "WhiteningTransformer",
    "anisotropy_report",
    "cooccurrence_graph",
    "effective_rank",
    "mean_pairwise_cosine",
    "neighbor_overlap",
    "normalized_spectrum",
    "top_direction_share",
]
