"""The one validator of every declared setting: type, choices, range, lists from comma strings, strict booleans,
``None`` where allowed."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from typing import Any

from lgenet.settings.declaration import Declaration, SettingError, _flags, declarations


def _split(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _in_range(d: Declaration, v: float) -> bool:
    if d.minimum is not None and (v <= d.minimum if d.exclusive_minimum else v < d.minimum):
        return False
    return not (d.maximum is not None and (v >= d.maximum if d.exclusive_maximum else v > d.maximum))


_ITEM_WORDS = {"str": "names", "int": "integers", "float": "numbers"}


def check_value(d: Declaration, name: str, value: Any, label: str, *, coerce: bool = False) -> Any:
    """``value`` checked against ``d`` and normalised (lists as tuples, path-likes as str); a
    :class:`SettingError` ``"{label} must be ..., got ..."`` otherwise."""

    def bad(requirement: str | None = None, got: Any = value) -> SettingError:
        return SettingError(f"{label} must be {requirement or d.requirement()}, got {got!r}", name)

    if value is None:
        if d.nullable:
            return None
        raise bad()
    if d.also and isinstance(value, str) and value in d.also:
        return value
    k = d.kind
    if k == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if k == "int":
        if not _is_int(value) or (d.choices is not None and value not in d.choices) or not _in_range(d, value):
            raise bad()
        return int(value)
    if k == "float":
        if not _is_number(value) or not math.isfinite(value) or not _in_range(d, value):
            raise bad()
        if d.choices is not None and value not in d.choices:
            raise bad()
        return float(value) if coerce else value
    if k in ("str", "path"):
        if k == "path" and isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or (d.choices is not None and value not in d.choices):
            raise bad()
        return value
    if k == "list":
        return _check_list(d, name, value, label, coerce)
    if k == "map":
        if not isinstance(value, Mapping):
            raise bad("a mapping")
        return dict(value)
    return value


def _check_list(d: Declaration, name: str, value: Any, label: str, coerce: bool) -> tuple:
    if isinstance(value, str):
        value = _split(value)
        if d.item == "int":
            value = [int(v) if v.lstrip("+-").isdigit() else v for v in value]
        elif d.item == "float":
            value = [_to_float(v) for v in value]
    if not isinstance(value, (list, tuple)):
        raise SettingError(
            f"{label} must be a list (or a comma-separated string), got {type(value).__name__} {value!r}", name
        )
    ok = {"str": lambda v: isinstance(v, str), "int": _is_int, "float": _is_number}.get(d.item, lambda v: True)
    if not all(ok(v) for v in value):
        raise SettingError(f"{label} must list {_ITEM_WORDS.get(d.item, 'values')}, got {list(value)!r}", name)
    if d.item == "int":
        value = [int(v) for v in value]
    elif d.item == "float" and coerce:
        value = [float(v) for v in value]
    if d.choices is not None:
        if not value:
            raise SettingError(f"{label} must list at least one of {list(d.choices)}, got none", name)
        for v in value:
            if v not in d.choices:
                raise SettingError(f"{label} must be among {list(d.choices)}, got {v!r}", name)
    if d.nonempty and not value:
        raise SettingError(f"{label} must list at least one value{f' ({d.why})' if d.why else ''}, got none", name)
    if d.length is not None and len(value) != d.length:
        raise SettingError(f"{label} must list {d.length} values, got {list(value)!r}", name)
    return tuple(value)


def _to_float(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text


def validate(obj: Any) -> None:
    """Check and normalise every declared field of a frozen settings dataclass (in field order)."""
    label = getattr(obj, "LABEL", "config parameter {name!r}")
    coerce = bool(getattr(obj, "COERCE_NUMBERS", False))
    for name, d in declarations(obj).items():
        shown = label.format(name=name)
        flags = _flags(name, d)
        if flags and flags[0] != "--" + name.replace("_", "-") and "'" in shown:
            shown = f"{shown} ({flags[0]})"  # the option that sets it has another name
        val = check_value(d, name, getattr(obj, name), shown, coerce=coerce)
        object.__setattr__(obj, name, val)
