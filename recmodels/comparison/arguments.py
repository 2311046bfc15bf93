"""Parsing of ``ace-bench`` option values, each failure an :class:`InputError` that names
the option, the problem and the fix."""

from __future__ import annotations

from .._validation import is_seed
from .inputs import InputError
from .methods import METHODS


def csv(text: str) -> list[str]:
    """The non-empty, stripped parts of a comma-separated option value."""
    return [part.strip() for part in text.split(",") if part.strip()]


def choices(text: str, known, option: str) -> list[str]:
    """Names from ``known`` in a comma-separated ``option`` value; a clear error otherwise."""
    names = csv(text)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        problem = f"unknown name(s) {unknown}" if unknown else "no name given"
        raise InputError(f"{option} {text}: {problem}; choose from {sorted(known)}, "
                         "separated by commas.")
    return names


def seeds(text: str, option: str = "--seeds") -> list[int]:
    """Seeds of a comma-separated ``option`` value, integers from 0 to 2**32 - 1 (what
    NumPy takes); a clear error otherwise."""
    try:
        values = [int(part) for part in csv(text)]
    except ValueError:
        values = []
    if not values or not all(is_seed(value) for value in values):
        raise InputError(f"{option} {text}: not a list of integers from 0 to 2**32 - 1; "
                         f"write e.g. {option} 0,1,2.")
    return values


EXAMPLES = {"--batch-size": 256, "--max-epochs": 400, "--patience": 10, "--hidden-size": 128,
            "--max-len": 50, "--window-stride": 1, "--k-core": 5, "--max-history": 100,
            "--jobs": 2}


def positive(value: int, option: str) -> int:
    """``value`` when it is at least 1; a clear error naming ``option`` otherwise."""
    if value < 1:
        raise InputError(f"{option} {value}: must be a positive integer; write e.g. {option} "
                         f"{EXAMPLES.get(option, 1)}.")
    return value


def rates(text: str, option: str) -> tuple[float, ...]:
    """Learning rates in (0, 1) of a comma-separated ``option`` value."""
    try:
        values = tuple(float(part) for part in csv(text))
    except ValueError:
        values = ()
    if not values or not all(0 < v < 1 for v in values):
        raise InputError(f"{option} {text}: not a list of learning rates in (0, 1); write e.g. "
                         f"{option} 1e-3,5e-4,1e-4.")
    return values


def overrides(pairs: list[str]) -> dict[str, dict]:
    """``--param METHOD.SETTING=VALUE`` pairs as ``{method: {setting: value}}``, each
    checked against the method's known settings and cast to a number, bool or None."""
    overrides: dict[str, dict] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        method, _, name = key.partition(".")
        if not value or not name:
            raise InputError(f"--param {pair}: write METHOD.SETTING=VALUE, e.g. ace.lam=10.")
        if method not in METHODS:
            raise InputError(f"--param {pair}: unknown method {method!r}; choose from "
                             f"{sorted(METHODS)}.")
        defaults = METHODS[method].known_settings
        if name not in defaults:
            raise InputError(f"--param {pair}: method {method!r} has no setting {name!r}; it "
                             f"takes {sorted(defaults) or 'none'}.")
        parsed: object = value
        for cast in (int, float):
            try:
                parsed = cast(value)
                break
            except ValueError:
                pass
        if value in ("True", "False", "None"):
            parsed = {"True": True, "False": False, "None": None}[value]
        if isinstance(parsed, str) and not isinstance(defaults[name], str):
            raise InputError(f"--param {pair}: {value!r} is not a number, True, False or None; "
                             f"write e.g. {method}.{name}={defaults[name]}.")
        overrides.setdefault(method, {})[name] = parsed
    return overrides
