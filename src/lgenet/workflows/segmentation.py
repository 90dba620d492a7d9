"""``lgenet segment train`` as a workflow: the segmentation CV (:mod:`lgenet.segment.train`), then its page."""

from __future__ import annotations

import logging

from lgenet.config import SegConfig
from lgenet.runs.seg import SegRunDir
from lgenet.segment.train import SegRunResult
from lgenet.segment.train import train_segmentation as _train_cv

__all__ = ["train_segmentation"]

log = logging.getLogger("lgenet")


def train_segmentation(
    cfg: SegConfig,
    *,
    progress: bool = True,
    executor: str = "local",
    workers: int = 1,
    report: bool = True,
    ray_address: str | None = None,
) -> SegRunResult:
    """The K-fold segmentation CV, then ``seg_report.html`` (``report``). The metrics are saved before the page is
    written, so a failure of the page is logged as an error and the run still succeeds."""
    result = _train_cv(cfg, progress=progress, executor=executor, workers=workers, ray_address=ray_address)
    if report:
        from lgenet.report.segmentation import write_seg_report

        rd = SegRunDir(result.out_dir)
        with rd.lock(), rd.file_log():
            try:
                result.figures.append(write_seg_report(rd.path))
            except Exception as exc:  # noqa: BLE001 - the metrics are saved; the page can be redone
                log.error("seg_report.html could not be written (%s)", exc)
    return result
