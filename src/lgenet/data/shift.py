"""Is a new image like the ones the model was trained on? A cheap intensity/geometry profile.

A model trained on one centre's LGE frames can be confidently wrong on another centre's (another
scanner, a dark instead of a zero-filled background, another pixel size). lgenet records a
*profile* of the training cohort when a run starts (``profile.json`` in the run directory) and
compares every new input with it in ``lgenet predict`` (and ``lgenet segment apply``), warning when
a feature lies far outside the training range. Features of a frame:

* ``background_fraction`` -- share of pixels at the frame's minimum value (zero fill);
* ``dark_fraction`` / ``bright_fraction`` -- share of pixels below 5 % / above 95 % after the run's
  intensity scaling (what the network sees);
* ``scaled_mean`` / ``scaled_sd`` -- mean and SD after that scaling;
* ``side_px`` -- the longer side in pixels; ``spacing_mm`` -- in-plane pixel size when known.

"Far" is outside the cohort's [Q1 - 3 IQR, Q3 + 3 IQR] *and* outside its [min, max] (so that a
small cohort's narrow quartiles alone do not raise false alarms). This is a screen, not a proof
of applicability: it catches gross differences of acquisition or export, not subtle ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lgenet.data.preprocess import scale_intensity

__all__ = ["frame_features", "cohort_profile", "shift_warnings", "FEATURE_LABELS"]

FEATURE_LABELS = {
    "background_fraction": "background (minimum-value) share",
    "dark_fraction": "dark-pixel share after scaling",
    "bright_fraction": "bright-pixel share after scaling",
    "scaled_mean": "mean intensity after scaling",
    "scaled_sd": "intensity SD after scaling",
    "side_px": "image side (px)",
    "spacing_mm": "pixel size (mm)",
}


def frame_features(
    frame: np.ndarray, meta: dict | None = None, percentiles: tuple[float, float] = (1.0, 99.0)
) -> dict[str, float]:
    """The profile features of one frame (see the module docstring)."""
    a = np.asarray(frame, dtype=np.float32)
    finite = a[np.isfinite(a)]
    s = scale_intensity(a, percentiles)
    spacing = (meta or {}).get("pixel_spacing")
    return {
        "background_fraction": float(np.mean(finite <= finite.min())) if finite.size else float("nan"),
        "dark_fraction": float(np.mean(s < 0.05)),
        "bright_fraction": float(np.mean(s > 0.95)),
        "scaled_mean": float(s.mean()),
        "scaled_sd": float(s.std()),
        "side_px": float(max(a.shape)),
        "spacing_mm": float(np.mean(spacing)) if spacing else float("nan"),
    }


def cohort_profile(features: Sequence[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per feature: n, min, q1, median, q3, max over the frames where it is known."""
    out: dict[str, dict[str, float]] = {}
    for name in FEATURE_LABELS:
        v = np.array([f.get(name, float("nan")) for f in features], dtype=np.float64)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        q1, med, q3 = np.percentile(v, [25, 50, 75])
        out[name] = {
            "n": int(v.size),
            "min": float(v.min()),
            "q1": float(q1),
            "median": float(med),
            "q3": float(q3),
            "max": float(v.max()),
        }
    return out


def shift_warnings(profile: dict[str, dict[str, float]], features: dict[str, float]) -> list[str]:
    """One line per feature of ``features`` far outside the training ``profile`` (empty = looks alike)."""
    out = []
    for name, st in profile.items():
        v = features.get(name, float("nan"))
        if v is None or not math.isfinite(v) or st.get("n", 0) < 3:
            continue
        iqr = st["q3"] - st["q1"]
        lo, hi = min(st["q1"] - 3 * iqr, st["min"]), max(st["q3"] + 3 * iqr, st["max"])
        if v < lo or v > hi:
            out.append(
                f"{FEATURE_LABELS[name]} {v:.3g} (training cohort {st['min']:.3g}\u2013{st['max']:.3g}, "
                f"median {st['median']:.3g})"
            )
    return out
