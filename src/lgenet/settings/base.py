"""The base class of every configuration (:class:`Settings`): validation after construction, the dict/YAML
round trip, the values of old records; and reading a YAML settings file."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lgenet.errors import ConfigError
from lgenet.settings.declaration import _KEY, SettingError, _field, declarations
from lgenet.settings.validation import validate


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
    def resume_free_names(cls) -> frozenset[str]:
        """The settings a resumed run may change without changing any finished fit (declared ``resume_free``)."""
        return frozenset(name for name, d in declarations(cls).items() if d.resume_free)

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
