"""Jobs: the unit of work an executor runs (a classifier fit, a segmentation fold, ...).

A job is any picklable object with ``name``, ``threads``, ``done()`` (its outputs are complete on
disk) and ``execute(on_epoch=None) -> FitOutcome``; it writes its own outputs atomically, with its
``fit.json`` last, so that a killed run resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FitOutcome", "run_job"]


@dataclass
class FitOutcome:
    job: Any
    skipped: bool = False
    seconds: float = 0.0
    images_per_second: float = 0.0
    final_loss: float = float("nan")
    worker: str = field(default="")


def run_job(job, on_epoch: Callable[[int, float], None] | None = None) -> FitOutcome:
    """Run any job (a :class:`FitJob`, a segmentation fold...): the one entry point executors call."""
    return job.execute(on_epoch=on_epoch)
