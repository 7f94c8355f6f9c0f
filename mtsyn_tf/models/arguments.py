"""Checks shared by the typed model arguments: each error is one line naming the field."""

from __future__ import annotations

from collections.abc import Mapping


def positive_int(field: str, value) -> int:
    """``value`` if it is an int > 0 (a bool or a float such as 32.0 is refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{field} must be a positive int. Received: {field}={value!r}")
    return value


def positive_ints(field: str, values, count: int) -> tuple[int, ...]:
    """``values`` as a tuple of exactly ``count`` positive ints (e.g. a JSON list)."""
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        raise ValueError(f"{field} must be a list of {count} positive ints. Received: {values!r}")
    if len(values) != count:
        raise ValueError(f"{field} must give {count} values. Received: {field}={values!r}")
    return tuple(positive_int(f"{field}[{i}]", v) for i, v in enumerate(values))


def width_table(field: str, widths, names: tuple[str, ...]) -> dict[str, int]:
    """``widths`` as ``{name: positive int}`` with exactly the keys ``names`` (in that order)."""
    if not isinstance(widths, Mapping):
        raise ValueError(f"{field} must be a dict {{name: channels}}. Received: {widths!r}")
    missing = [n for n in names if n not in widths]
    unknown = sorted(set(widths) - set(names))
    if missing or unknown:
        raise ValueError(
            f"{field} must give exactly {names}. Missing: {missing}, unknown: {unknown}. "
            f"Received: {field}={dict(widths)}"
        )
    return {n: positive_int(f"{field}[{n!r}]", widths[n]) for n in names}
