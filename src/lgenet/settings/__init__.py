"""Each setting declared once: its default, help, allowed values, since which version it exists and the value a
record made before it existed implies.

A configuration class is a frozen dataclass on :class:`Settings` whose fields are :func:`setting` declarations::

    @dataclass(frozen=True)
    class Fit(Settings):
        epochs: int = setting(100, help="training epochs", minimum=1, cli="--epochs")

From the declarations alone come the validation (:func:`validate`: type, choices, range, lists from comma strings,
strict booleans, ``None`` where allowed; messages such as "config parameter 'epochs' must be an integer >= 1, got
0"), the YAML/dict round trip (:meth:`Settings.from_dict`, :meth:`Settings.to_dict`, :func:`load_settings`, every
error naming its source file), the values of old records (:meth:`Settings.absent_values`,
:meth:`Settings.record_view`) and the command-line options (:func:`add_options`, the default shown from the
declaration). Rules that tie several settings together stay small explicit checks (``_check``).

This layer imports nothing of lgenet but :mod:`lgenet.errors` (and the standard library and yaml).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lgenet.errors import ConfigError

__all__ = [
    "Declaration",
    "Settings",
    "SettingError",
    "setting",
    "borrow",
    "borrowed_values",
    "declaration",
    "declarations",
    "validate",
    "load_settings",
    "read_yaml_mapping",
    "add_options",
    "values_from_args",
    "show_value",
]

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
) -> Any:
    """Declare a setting: a ``dataclasses.field`` whose metadata is its :class:`Declaration`.

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


# ----------------------------------------------------------------------------------- validation
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


# ----------------------------------------------------------------------------------- the base class
class Settings:
    """Base of a frozen dataclass of :func:`setting` declarations: validation, copies, dict/YAML round trip.

    Class attributes: ``LABEL`` (how messages name a parameter, ``{name}`` filled in), ``COERCE_NUMBERS``
    (records: numbers of a float setting stored as floats). A class (or a section it inherits) adds its
    cross-field rules as ``_check(self)``; every ``_check`` along the class's bases runs, base first."""

    LABEL = "config parameter {name!r}"
    COERCE_NUMBERS = False

    def __post_init__(self) -> None:
        validate(self)
        for klass in reversed(type(self).__mro__):
            check = vars(klass).get("_check")
            if check is not None:
                check(self)

    def replace(self, **changes: Any):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]  # every Settings is a dataclass

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples, dicts for mappings), in field order: the YAML a run saves."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None):
        """An instance from a mapping of parameter: value; unknown keys are listed with the known ones, and every
        error names ``source`` (the file) when given."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        where = f"{source}: " if source else ""
        if unknown:
            raise ConfigError(
                f"{where or 'config: '}unknown parameter(s) {unknown}; known parameters are {sorted(known)}"
            )
        try:
            return cls(**dict(data))
        except SettingError as exc:
            if not source:
                raise
            raise SettingError(f"{source}: {exc}", exc.name) from None
        except ConfigError as exc:
            if not source:
                raise
            raise ConfigError(f"{source}: {exc}") from None
        except TypeError as exc:  # wrong types that the dataclass itself rejects
            raise ConfigError(f"{where or 'config: '}{exc}") from None

    @classmethod
    def absent_values(cls) -> dict[str, Any]:
        """``{name: value}`` that a record made before each setting existed implies (the declarations' ``absent``)."""
        return {name: _plain(d.absent) for name, d in declarations(cls).items()}

    @classmethod
    def values_of(cls, obj: Any) -> dict[str, Any]:
        """This class's fields, read from ``obj`` (e.g. a config that holds this section)."""
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls) if f.init}

    @classmethod
    def record_view(cls) -> type:
        """A subclass of ``cls`` whose fields default to their ``absent`` values: a record (such as a saved
        fold model's spec) that lacks a field means what runs made before that field did."""
        cached = cls.__dict__.get("_record_view")
        if cached is not None:
            return cached
        spec = []
        for f in dataclasses.fields(cls):
            d = f.metadata.get(_KEY)
            if d is not None:
                spec.append((f.name, f.type, _field(d, d.absent)))
        view = dataclasses.make_dataclass(
            cls.__name__ + "Record", spec, bases=(cls,), frozen=True, namespace={"__module__": cls.__module__}
        )
        type.__setattr__(cls, "_record_view", view)
        return view


def borrowed_values(obj: Any, owner: type) -> dict[str, Any]:
    """``{owner's name: value}`` of ``obj``'s fields borrowed from ``owner`` (:func:`borrow`)."""
    prefix = owner.__name__ + "."
    return {
        d.origin[len(prefix) :]: getattr(obj, name)
        for name, d in declarations(obj).items()
        if d.origin and d.origin.startswith(prefix)
    }


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


# ----------------------------------------------------------------------------------- YAML files
def read_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """A YAML file of parameter: value lines as a dict; clear errors for a missing, non-UTF-8 or non-YAML file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(
            f"config file {p} is not UTF-8 text; a config is a YAML file of parameter: value lines"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {p} must hold a mapping of parameter: value, got {type(loaded).__name__}")
    return loaded


def load_settings(cls: type, path: str | Path | None = None, **overrides: Any):
    """``cls`` from a YAML file (optional) with keyword overrides (``None`` values ignored); an error in a value
    that the file gave names the file."""
    data = read_yaml_mapping(path) if path is not None else {}
    over = {k: v for k, v in overrides.items() if v is not None}
    try:
        return cls.from_dict({**data, **over})
    except ConfigError as exc:
        name = getattr(exc, "name", None)
        if path is None or (name is not None and name in over):  # the command line's value, not the file's
            raise
        msg = str(exc)
        msg = msg[len("config: ") :] if msg.startswith("config: ") else msg
        raise (SettingError(f"{path}: {msg}", name) if name else ConfigError(f"{path}: {msg}")) from None


# ----------------------------------------------------------------------------------- command-line options
def show_value(v: Any) -> str:
    """A value as ``--help`` and messages write it (lists comma-separated, floats %g)."""
    if isinstance(v, (tuple, list)):
        return ",".join(show_value(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _flags(name: str, d: Declaration) -> tuple[str, ...]:
    if d.cli == ("auto",):
        return ("--" + name.replace("_", "-"),)
    return d.cli


def _parse_number(kind: str, also: tuple, flag: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text in also:
            return text
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            word = "an integer" if kind == "int" else "a number"
            extra = f" or {' or '.join(also)}" if also else ""
            raise argparse.ArgumentTypeError(f"{flag} must be {word}{extra}, got {text!r}") from None

    return parse


def _parse_list(item: str | None, flag: str) -> Callable[[str], tuple]:
    def parse(text: str) -> tuple:
        parts = _split(text)
        try:
            return tuple(int(v) if item == "int" else float(v) if item == "float" else v for v in parts)
        except ValueError:
            word = "integers" if item == "int" else "numbers"
            raise argparse.ArgumentTypeError(f"{flag}: expected comma-separated {word}, got {text!r}") from None

    return parse


def _with_note(text: str, note: str | None) -> str:
    return (f"{text} ({note})" if note else text).replace("%", "%%")  # argparse %-formats help strings


def add_options(
    parser: Any,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    shown: Mapping[str, Any] | None = None,
    shown_word: str = "default",
    notes: Mapping[str, str] | None = None,
    more: Mapping[str, str] | None = None,
    required: Iterable[str] = (),
) -> list[str]:
    """Add an option for every declared setting of ``cls`` that has a flag (``only``/``exclude`` select them) to
    ``parser`` (a parser or an argument group); returns the names added.

    The help is the declaration's, with its default (``default_text``, else the value); ``shown`` replaces the
    defaults of some settings by a command's own (``shown_word`` names them, e.g. "demo default"), ``notes``
    replaces the default's words of some settings, ``more`` adds words to their help. Every option stores
    under the setting's name with default ``None`` (unset: the config's default or a --config file decides)."""
    names = [n for n, d in declarations(cls).items() if _flags(n, d) or d.cli_off]
    if only is not None:
        wanted = list(only)
        names = [n for n in wanted if n in names]
    names = [n for n in names if n not in set(exclude)]
    shown, notes, more, required = dict(shown or {}), dict(notes or {}), dict(more or {}), set(required)
    for name in names:
        d = declaration(cls, name)
        text = d.help + more.get(name, "")
        if name in required:
            note = None  # the command line must give it
        elif name in shown:
            note = f"{shown_word}: {show_value(shown[name])}"
        elif name in notes:
            note = notes[name]
        elif d.default_text is not None:
            note = f"default: {d.default_text}"
        elif d.default is not None and d.kind != "bool":
            note = f"default: {show_value(d.default)}"
        else:
            note = None
        flags = _flags(name, d)
        if d.kind == "bool":
            target = parser.add_mutually_exclusive_group() if flags and d.cli_off else parser
            if flags:
                on_note = note if note else ("default" if d.default is True and d.cli_off else None)
                target.add_argument(
                    *flags, dest=name, action="store_const", const=True, default=None, help=_with_note(text, on_note)
                )
            if d.cli_off:
                off_note = "default" if d.default is False and flags else (None if flags else note)
                target.add_argument(
                    d.cli_off,
                    dest=name,
                    action="store_const",
                    const=False,
                    default=None,
                    help=_with_note(d.help_off or f"not: {d.help}", off_note),
                )
            continue
        kw: dict[str, Any] = {"dest": name, "default": None, "help": _with_note(text, note)}
        if d.metavar:
            kw["metavar"] = d.metavar
        if name in required:
            kw["required"] = True
        if d.kind == "list":
            kw["type"] = _parse_list(d.item, flags[0])
        elif d.kind in ("int", "float"):
            kw["type"] = _parse_number(d.kind, d.also, flags[0])
            if d.choices is not None:
                kw["choices"] = d.choices
        elif d.choices is not None:
            kw["choices"] = d.choices
        parser.add_argument(*flags, **kw)
    return names


def values_from_args(a: argparse.Namespace, cls: type, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """``{name: value}`` of the options :func:`add_options` added for ``cls`` that the command line set."""
    skip = set(exclude)
    return {
        n: getattr(a, n)
        for n, d in declarations(cls).items()
        if (_flags(n, d) or d.cli_off) and n not in skip and getattr(a, n, None) is not None
    }
