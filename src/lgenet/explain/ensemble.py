"""CAM overlays for new images (``lgenet predict --cam DIR``): the fold-ensemble mean map.

New images were seen by none of the K fold models, so all K explain them; the overlay shows the
mean of their maps (see :func:`lgenet.explain.cam.ensemble_cams`), mapped back to the input
frame's own grid. Files are numbered in input order (``cam_001.png``...) and listed with their
input and probability in ``cams.csv``: an input's file name is never reused, since DICOM file
names can carry identifiers (UIDs, names).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from lgenet.explain.cam import CamSpec, ensemble_cams
from lgenet.explain.overlay import cam_to_frame, display_frame, overlay_rgb, write_png
from lgenet.utils import atomic_write_text

__all__ = ["write_ensemble_overlays"]


def write_ensemble_overlays(
    models: Sequence[torch.nn.Module],
    frames: Sequence[np.ndarray],
    x: torch.Tensor,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    spec: CamSpec | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    ids: Sequence[str] | None = None,
    probs: np.ndarray | None = None,
) -> list[Path]:
    """Write one overlay PNG per input (original frame resolution) and ``cams.csv``; return the PNG paths.

    ``spec`` says which CAM (method, layer, explained class, threshold; default :class:`CamSpec`'s);
    ``percentiles`` are the display window of the frames, ``ids`` the inputs' study-local patient ids; ``probs``
    the fold ensemble's mean probabilities when the caller has them (not computed again).
    """
    out = Path(out_dir)
    spec = spec or CamSpec()
    res = ensemble_cams(
        models,
        x,
        method=spec.method,
        target_layer=spec.target_layer,
        target=spec.target,
        threshold=spec.threshold,
        probs=probs,
    )
    out.mkdir(parents=True, exist_ok=True)  # only once the maps exist: a bad --cam-layer leaves no folder
    paths = []
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["index", "patient_id", "input", "prob", "explained_class", "method", "layer", "overlay"])
    width = max(3, len(str(len(frames))))
    for i, frame in enumerate(frames):
        f01 = display_frame(frame, percentiles)
        cam = cam_to_frame(res.maps[i], frame.shape)
        p = write_png(out / f"cam_{i + 1:0{width}d}.png", overlay_rgb(f01, cam))
        paths.append(p)
        w.writerow(
            [
                i + 1,
                ids[i] if ids is not None else "",
                str(inputs[i]),
                f"{float(res.probs[i]):.6f}",
                "positive" if res.signs[i] > 0 else "negative",
                res.method,
                res.layer,
                p.name,
            ]
        )
    atomic_write_text(out / "cams.csv", buf.getvalue())
    return paths
