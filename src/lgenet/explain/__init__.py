"""Where the model looked: class activation maps, out-of-fold, with sanity checks.

* :mod:`.cam` -- Grad-CAM / Grad-CAM++ / HiResCAM of an LgeNet through pytorch-grad-cam
  (:func:`compute_cams`, fold-ensemble :func:`ensemble_cams`).
* :mod:`.overlay` -- CAM back on the original frame grid, colour overlay, metadata-free PNG.
* :mod:`.frames` -- the cohort's frames, model inputs and heart masks, read as in training.
* :mod:`.oof` -- every patient explained by its own out-of-fold model, cached in the run.
* :mod:`.ensemble` -- fold-ensemble overlays for new images (``lgenet predict --cam``).
* :mod:`.gallery` -- most confident TP / FN / TN / FP, frame beside overlay.
* :mod:`.sanity` -- heart-energy and model-randomisation checks.
"""

from __future__ import annotations

from lgenet.explain.cam import (
    CAM_METHODS,
    CAM_TARGETS,
    METHOD_LABELS,
    CamResult,
    CamSpec,
    LogitTarget,
    compute_cams,
    ensemble_cams,
    resolve_target_layer,
)
from lgenet.explain.ensemble import write_ensemble_overlays
from lgenet.explain.frames import FrameStore, safe_name
from lgenet.explain.gallery import CATEGORIES, Case, plot_gallery, select_cases
from lgenet.explain.oof import OutOfFoldError, oof_cams, oof_cams_multi, read_folds
from lgenet.explain.oof_store import OofCams, write_overlays
from lgenet.explain.overlay import cam_to_frame, display_frame, overlay_rgb, write_png
from lgenet.explain.sanity import HEART_LABELS, SanityResult, cam_sanity, cam_sanity_multi, heart_share, plot_sanity

__all__ = [
    "CAM_METHODS",
    "CAM_TARGETS",
    "METHOD_LABELS",
    "CamResult",
    "CamSpec",
    "LogitTarget",
    "compute_cams",
    "ensemble_cams",
    "resolve_target_layer",
    "write_ensemble_overlays",
    "FrameStore",
    "safe_name",
    "CATEGORIES",
    "Case",
    "plot_gallery",
    "select_cases",
    "OofCams",
    "OutOfFoldError",
    "oof_cams",
    "oof_cams_multi",
    "read_folds",
    "write_overlays",
    "cam_to_frame",
    "display_frame",
    "overlay_rgb",
    "write_png",
    "HEART_LABELS",
    "SanityResult",
    "cam_sanity",
    "cam_sanity_multi",
    "heart_share",
    "plot_sanity",
]
