"""One frozen configuration object per run, saved in its run directory.

:class:`RunConfig` (``lgenet run``: the grid), :class:`SegConfig` (``lgenet segment train``) and
:class:`OutcomeSettings` (``lgenet outcomes``) hold every setting of a run; each is built from a YAML
file and/or keyword overrides, validated once, and its resolved form is saved in the run directory
so that a run can be audited and resumed.
"""

from lgenet.config.outcome import OutcomeSettings
from lgenet.config.run import (
    ANATOMY_CHANNELS,
    CI_METHODS,
    DEVICES,
    FAMILIES,
    HEADS,
    INITS,
    PRECISIONS,
    SELECTIONS,
    TASKS,
    RunConfig,
    load_config,
)
from lgenet.config.seg import SegConfig

__all__ = [
    "RunConfig",
    "SegConfig",
    "OutcomeSettings",
    "load_config",
    "TASKS",
    "INITS",
    "HEADS",
    "FAMILIES",
    "ANATOMY_CHANNELS",
    "PRECISIONS",
    "DEVICES",
    "SELECTIONS",
    "CI_METHODS",
]
