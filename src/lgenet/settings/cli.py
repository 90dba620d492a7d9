"""Command-line options derived from the declarations (:func:`add_options`, :func:`values_from_args`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lgenet.settings.declaration import _flags, declaration, declarations
from lgenet.settings.validation import _split


def show_value(v: Any) -> str:
    """A value as ``--help`` and messages write it (lists comma-separated, floats %g)."""
    if isinstance(v, (tuple, list)):
        return ",".join(show_value(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


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


@dataclass(frozen=True)
class OptionHelp:
    """How a command's --help words some settings: ``shown`` replaces their defaults by the command's own
    (``shown_word`` names them, e.g. "demo default"), ``notes`` replaces the default's words, ``more`` adds words
    to the help."""

    shown: Mapping[str, Any] | None = None
    shown_word: str = "default"
    notes: Mapping[str, str] | None = None
    more: Mapping[str, str] | None = None


def add_options(
    parser: Any,
    cls: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    required: Iterable[str] = (),
    wording: OptionHelp = OptionHelp(),
) -> list[str]:
    """Add an option for every declared setting of ``cls`` that has a flag (``only``/``exclude`` select them) to
    ``parser`` (a parser or an argument group); returns the names added.

    The help is the declaration's, with its default (``default_text``, else the value), worded by ``wording``
    (:class:`OptionHelp`) where a command has its own defaults or words. Every option stores
    under the setting's name with default ``None`` (unset: the config's default or a --config file decides)."""
    names = [n for n, d in declarations(cls).items() if _flags(n, d) or d.cli_off]
    if only is not None:
        wanted = list(only)
        names = [n for n in wanted if n in names]
    names = [n for n in names if n not in set(exclude)]
    shown, notes, more = dict(wording.shown or {}), dict(wording.notes or {}), dict(wording.more or {})
    shown_word, required = wording.shown_word, set(required)
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
