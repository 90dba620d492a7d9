"""What the report explains and how: :class:`ReportOptions`."""

from __future__ import annotations

from dataclasses import dataclass

from lgenet.explain.cam import CAM_METHODS
from lgenet.explain.sanity import HEART_LABELS, MAX_RHO

__all__ = ["ReportOptions"]


@dataclass(frozen=True)
class ReportOptions:
    """What the report explains and how.

    Attributes:
        manifest: the cohort CSV (default: the run's own, from config.yaml).
        cam_method: the method of the gallery and Figure 1: ``auto`` (default since 0.2.0: per task, the first of
            :data:`~lgenet.explain.cam.CAM_METHODS` -- Grad-CAM first -- that passes both sanity checks, else
            Grad-CAM, flagged), or ``gradcam``, ``gradcam++``, ``hirescam`` to pin one.
        cam_layer: module path of the CAM layer (default: the backbone's last block).
        cam_target: ``predicted`` (explain the class called) or ``positive``.
        sanity_methods: methods whose sanity checks are reported side by side.
        n_examples: gallery cases per category (TP, FN, TN, FP).
        heart_labels: mask labels counted as heart in the energy check.
        n_random: patients per task in the model-randomisation check.
        max_rho: the randomisation check passes when the median Spearman rho is below this.
        cams: compute CAMs at all (False: metrics-only report).
        refresh_cams: ignore the CAM cache.
    """

    manifest: str | None = None
    cam_method: str = "auto"
    cam_layer: str | None = None
    cam_target: str = "predicted"
    sanity_methods: tuple[str, ...] = CAM_METHODS
    n_examples: int = 3
    heart_labels: tuple[int, ...] = HEART_LABELS
    n_random: int = 16
    max_rho: float = MAX_RHO
    cams: bool = True
    refresh_cams: bool = False
