"""Digests and fingerprints that tie a result or a checkpoint to what produced it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

import numpy as np
import torch

DIGEST_CHARS = 16


def _hasher():
    return hashlib.blake2b(digest_size=DIGEST_CHARS // 2)


def _update_with_array(hasher, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    hasher.update(f"{array.dtype.str}{array.shape}".encode())
    hasher.update(memoryview(array).cast("B"))


def array_digest(*arrays: np.ndarray) -> str:
    """Hex digest of the dtype, shape and bytes of one or more arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from recmodels.provenance import array_digest
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> array_digest(a) == array_digest(a.copy()), array_digest(a) == array_digest(a.T)
    (True, False)
    """
    hasher = _hasher()
    for array in arrays:
        _update_with_array(hasher, np.asarray(array))
    return hasher.hexdigest()


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """Hex digest of a ``state_dict``: every entry's name, dtype, shape and values."""
    hasher = _hasher()
    for name in sorted(state):
        hasher.update(name.encode())
        tensor = state[name].detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        _update_with_array(hasher, tensor.numpy())
    return hasher.hexdigest()


def _jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def canonical_json(settings: Mapping) -> str:
    """Settings as sorted, compact JSON: the text a fingerprint is taken of."""
    return json.dumps(_jsonable(settings), sort_keys=True, separators=(",", ":"))


def fingerprint(settings: Mapping) -> str:
    """Hex digest of :func:`canonical_json` of ``settings``.

    Examples
    --------
    >>> from recmodels.provenance import fingerprint
    >>> fingerprint({"lr": 1e-3, "seed": 0}) == fingerprint({"seed": 0, "lr": 0.001})
    True
    >>> fingerprint({"lr": 1e-3}) == fingerprint({"lr": 5e-4})
    False
    """
    hasher = _hasher()
    hasher.update(canonical_json(settings).encode())
    return hasher.hexdigest()


def _flatten(settings: Mapping, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def settings_diff(before: Mapping, after: Mapping, *, ignore: Iterable[str] = ()) -> list[str]:
    """``"name: old -> new"`` for every setting that differs, nested keys dotted.

    Examples
    --------
    >>> from recmodels.provenance import settings_diff
    >>> settings_diff({"lr": 0.001, "method": {"lam": 50}}, {"lr": 0.001, "method": {"lam": 0}})
    ['method.lam: 50 -> 0']
    """
    old = _flatten(json.loads(canonical_json(before)))
    new = _flatten(json.loads(canonical_json(after)))
    skipped = set(ignore)
    return [f"{name}: {old.get(name, '(absent)')} -> {new.get(name, '(absent)')}"
            for name in sorted(set(old) | set(new))
            if name not in skipped and old.get(name, "(absent)") != new.get(name, "(absent)")]


def sequence_digest(data) -> str:
    """Hex digest of a :class:`~recmodels.data.SequenceData`: ids, order and split."""
    hasher = _hasher()
    for ids in (data.user_ids, data.item_ids):
        hasher.update("\x1f".join(map(str, ids)).encode())
    for array in (data.offsets, data.items, data.embedding_rows):
        _update_with_array(hasher, np.asarray(array, dtype=np.int64))
    return hasher.hexdigest()


def module_settings(model: torch.nn.Module) -> dict:
    """Every scalar setting stored on the model's modules, keyed by module path.

    Hyperparameters kept as attributes (sizes, dropout rates, mask ratios, LayerNorm eps)
    end up here, so two models that differ in any of them describe differently.

    Examples
    --------
    >>> from torch import nn
    >>> from recmodels.provenance import module_settings
    >>> module_settings(nn.Sequential(nn.Linear(3, 2), nn.Dropout(0.5)))["1"]
    {'type': 'Dropout', 'p': 0.5, 'inplace': False}
    """
    described = {}
    for path, module in model.named_modules():
        values = {"type": type(module).__name__}
        for name, value in vars(module).items():
            if name.startswith("_") or name == "training":
                continue
            if isinstance(value, (bool, int, float, str)):
                values[name] = value
            elif isinstance(value, tuple) and all(isinstance(v, (int, float)) for v in value):
                values[name] = list(value)
        described[path or "model"] = values
    return described
