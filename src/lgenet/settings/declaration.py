"""A setting's declaration: :func:`setting` (a dataclass field carrying a :class:`Declaration`), :func:`borrow`
(one setting two classes hold) and the readers of declarations."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lgenet.errors import ConfigError

_KEY = "lgenet.setting"
_MISSING = dataclasses.MISSING
KINDS = ("bool", "int", "float", "str", "path", "list", "map", "any")


class SettingError(ConfigError):
    """A value that breaks its declaration (``name``: the parameter)."""

    def __init__(self, message: str, name: str | None = None) -> None:
        super().__init__(message)
        self.name = name


@dataclass(frozen=True)
class Declaration:
    """One setting (see :func:`setting`)."""

    default: Any
    help: str
    kind: str
    item: str | None = None
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    nullable: bool = False
    also: tuple = ()
    length: int | None = None
    nonempty: bool = False
    why: str | None = None
    range_text: str | None = None
    since: str = "0.1.0"
    absent: Any = None
    cli: tuple[str, ...] = ()
    cli_off: str | None = None
    help_off: str | None = None
    metavar: str | None = None
    default_text: str | None = None
    origin: str | None = None  # the name of the declaration this one is borrowed from
    #: a resumed run may differ in it: it changes no fit (where the run goes, compute placement, post-hoc analyses)
    resume_free: bool = False

    def requirement(self) -> str:
        """What a valid value is, in words ("an integer >= 1", "one of ['a', 'b']", ...)."""
        if self.kind == "bool":
            text = "true or false"
        elif self.choices is not None and self.kind != "list":
            text = f"one of {list(self.choices)}"
        elif self.kind in ("int", "float"):
            word = "an integer" if self.kind == "int" else "a finite number"
            lo, hi = self.minimum, self.maximum
            if self.range_text is not None:
                text = f"{word} in {self.range_text}" if self.kind == "int" else f"in {self.range_text}"
            elif lo is not None and hi is not None:
                br = f"{'(' if self.exclusive_minimum else '['}{_num(lo)}, {_num(hi)}{')' if self.exclusive_maximum else ']'}"
                text = f"{word} in {br}" if self.kind == "int" else f"in {br}"
            elif lo is not None:
                text = f"{word} {'>' if self.exclusive_minimum else '>='} {_num(lo)}"
            elif hi is not None:
                text = f"{word} {'<' if self.exclusive_maximum else '<='} {_num(hi)}"
            else:
                text = word
        elif self.kind == "list":
            text = "a list (or a comma-separated string)"
        elif self.kind in ("str", "path"):
            text = "a text" if self.kind == "str" else "a path"
        else:
            text = "a valid value"
        if self.also:
            text += f" or {self.also[0]!r}" if len(self.also) == 1 else f" or one of {list(self.also)}"
        if self.why:
            text += f" ({self.why})"
        if self.nullable:
            text += " or unset"
        return text


def _num(v: float) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _kind_of(default: Any) -> str:
    if isinstance(default, bool):
        return "bool"
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    if isinstance(default, str):
        return "str"
    if isinstance(default, (tuple, list)):
        return "list"
    if isinstance(default, Mapping):
        return "map"
    raise TypeError(f"give the kind of a setting whose default is {default!r}")


def setting(
    default: Any,
    *,
    help: str,
    kind: str | None = None,
    item: str | None = None,
    choices: Iterable | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    nullable: bool | None = None,
    also: Iterable = (),
    length: int | None = None,
    nonempty: bool = False,
    why: str | None = None,
    range_text: str | None = None,
    since: str = "0.1.0",
    absent: Any = _MISSING,
    cli: bool | str | Iterable[str] | None = None,
    cli_off: str | None = None,
    help_off: str | None = None,
    metavar: str | None = None,
    default_text: str | None = None,
    resume_free: bool = False,
) -> Any:
    """Declare a setting: a ``dataclasses.field`` whose metadata is its :class:`Declaration`.

    Its many keywords are the declaration's fields, one each and all optional but ``default`` and ``help``: a
    declaration reads as one call (``setting(100, help=..., minimum=1, cli=True)``), so they are not grouped.

    Args:
        default: the value of new runs.
        help: one line for ``--help`` (the default is added from ``default``, never typed again).
        kind: bool, int, float, str, path (a str; path-like values become str), list, map or any (only the class's
            own checks); by default that of ``default``. ``item``: the kind of a list's items (default: that of the
            default's first item, else str).
        choices: the allowed values (of a list: of its items). ``minimum``/``maximum`` (``exclusive_*``): a number's
            range. ``also``: literal values allowed beside a number (e.g. ``'cv'``). ``nullable``: ``None`` allowed
            (default: when the default is ``None``). ``length``/``nonempty``: a list's size. ``why``: words added to the
            requirement in messages; ``range_text``: the range as messages write it.
        since: the version that added the setting. ``absent``: what a record made without it implies (default: the
            default; for a setting whose default changed after runs were made, the value that reproduces them).
        cli: the option's flag (``True``: ``--name-with-dashes``), or flag and aliases; ``None``: no option.
            For a bool: the flag that sets it true; ``cli_off`` (with ``help_off``) the one that sets it false.
        metavar: the option's metavar. ``default_text``: the default in words, where the value alone does not say it.
        resume_free: a resumed run may differ in it, because it changes no finished fit (where the run goes, how it
            is computed -- checked per fit --, the analyses after the grid).
    """
    k = kind or (_kind_of(default) if default is not None else None)
    if k is None:
        raise TypeError("a setting whose default is None needs its kind")
    if k not in KINDS:
        raise TypeError(f"unknown setting kind {k!r}")
    if k == "list" and item is None:
        item = _kind_of(default[0]) if default else "str"
    if cli is True:
        flags: tuple[str, ...] = ()  # filled in by the field name (see _flags)
        auto = True
    elif cli in (None, False):
        flags, auto = (), False
    else:
        flags, auto = ((cli,) if isinstance(cli, str) else tuple(cli)), False
    decl = Declaration(
        default=default,
        help=help,
        kind=k,
        item=item,
        choices=None if choices is None else tuple(choices),
        minimum=minimum,
        maximum=maximum,
        exclusive_minimum=exclusive_minimum,
        exclusive_maximum=exclusive_maximum,
        nullable=default is None if nullable is None else nullable,
        also=tuple(also),
        length=length,
        nonempty=nonempty,
        why=why,
        range_text=range_text,
        since=since,
        absent=default if absent is _MISSING else absent,
        cli=("auto",) if auto else flags,
        cli_off=cli_off,
        help_off=help_off,
        metavar=metavar,
        default_text=default_text,
        resume_free=resume_free,
    )
    return _field(decl, default)


def _field(decl: Declaration, default: Any) -> Any:
    meta = {_KEY: decl}
    if isinstance(default, (list, set, Mapping)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def borrow(owner: type, name: str, **changes: Any) -> Any:
    """A field with the declaration of ``owner.name`` (one setting that two classes hold), ``changes`` applied
    (e.g. another ``cli``); :meth:`Settings.borrowed` maps it back."""
    decl = declaration(owner, name)
    assert decl is not None, f"{owner.__name__}.{name} is not a declared setting"
    if "cli" in changes:
        c = changes["cli"]
        changes["cli"] = () if c in (None, False) else ("auto",) if c is True else (c,) if isinstance(c, str) else c
    decl = dataclasses.replace(decl, origin=f"{owner.__name__}.{name}", **changes)
    return _field(decl, decl.default)


def declaration(cls_or_field: Any, name: str | None = None) -> Declaration | None:
    """The declaration of a field (or of ``cls``'s field ``name``); None for an undeclared field."""
    f = cls_or_field if name is None else {f.name: f for f in dataclasses.fields(cls_or_field)}[name]
    return f.metadata.get(_KEY)


def declarations(cls: Any) -> dict[str, Declaration]:
    """``{name: declaration}`` of every declared field of a settings class (or instance), in field order."""
    return {f.name: f.metadata[_KEY] for f in dataclasses.fields(cls) if _KEY in f.metadata}


def _flags(name: str, d: Declaration) -> tuple[str, ...]:
    if d.cli == ("auto",):
        return ("--" + name.replace("_", "-"),)
    return d.cli
