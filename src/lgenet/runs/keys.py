"""Model keys: the name of one model of the grid.

``arch/init`` for the seed protocol's classifier (``resnet50/radimagenet``), ``family:arch/init`` for the
other families (``burden:whole/seg``). Its folder name (*slug*) replaces ``/`` by ``__`` and ``:`` by ``--``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lgenet.errors import ConfigError

__all__ = ["ModelKey", "model_key", "parse_model_key", "SEED_FAMILY"]

#: the seed protocol's family
SEED_FAMILY = "classifier"


@dataclass(frozen=True)
class ModelKey:
    """One model of the grid: a family (``classifier`` = the seed protocol), a backbone and an init."""

    arch: str
    init: str
    family: str = SEED_FAMILY

    def __str__(self) -> str:
        base = f"{self.arch}/{self.init}"
        return base if self.family == SEED_FAMILY else f"{self.family}:{base}"

    @property
    def slug(self) -> str:
        return str(self).replace("/", "__").replace(":", "--")


def model_key(arch: str, init: str, family: str = SEED_FAMILY) -> str:
    """``'arch/init'`` (seed classifier) or ``'family:arch/init'``."""
    return str(ModelKey(arch, init, family))


def parse_model_key(key: str | ModelKey) -> ModelKey:
    if isinstance(key, ModelKey):
        return key
    family, _, rest = str(key).rpartition(":")
    arch, sep, init = rest.partition("/")
    if not sep or not arch or not init:
        raise ConfigError(f"model {key!r} is not of the form ARCH/INIT (e.g. resnet50/random) or FAMILY:ARCH/INIT")
    return ModelKey(arch, init, family or SEED_FAMILY)
