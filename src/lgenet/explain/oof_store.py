"""The out-of-fold CAMs of one (task, model) as an object, its cache file and its overlay PNGs.

Cache files (written by :mod:`lgenet.explain.oof`)::

    cams/<task>/<arch>__<init>/<method>__<layer>__<target>.npz
        maps (N, S, S) uint8 (CAM x 255), rows, patient_ids, folds, y_true, logits, signs,
        oof_prob, frame_shapes, grid (the layer's feature-map size), fingerprint (JSON: what the
        maps depend on)
    cams/<task>/<arch>__<init>/overlays_<method>/<patient_id>.png   overlays at frame resolution

A cache file is read back only when its fingerprint equals the one asked for.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lgenet.explain.cam import check_method
from lgenet.explain.frames import FrameStore, safe_name
from lgenet.explain.overlay import cam_to_frame, display_frame, overlay_rgb, write_png
from lgenet.utils import atomic_path

__all__ = ["OofCams", "method_slug", "save_cams", "load_cams", "write_overlays"]

log = logging.getLogger("lgenet")


@dataclass
class OofCams:
    """Out-of-fold CAMs of one (task, model), one entry per manifest row of a labelled patient."""

    task: str
    model: str
    method: str
    layer: str
    target: str
    rows: np.ndarray
    patient_ids: list[str]
    folds: np.ndarray
    y_true: np.ndarray
    logits: np.ndarray
    signs: np.ndarray
    oof_prob: np.ndarray
    maps_u8: np.ndarray
    frame_shapes: np.ndarray
    path: Path
    fingerprint: dict = field(default_factory=dict)
    from_cache: bool = False
    grid: tuple[int, int] = (0, 0)  # the CAM layer's feature-map size (the maps' true resolution)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def prob(self) -> np.ndarray:
        """The explaining fold model's own probability for each row."""
        return 1.0 / (1.0 + np.exp(-self.logits.astype(np.float64)))

    @property
    def empty(self) -> np.ndarray:
        return self.maps_u8.reshape(len(self.maps_u8), -1).max(axis=1) == 0

    def map(self, i: int) -> np.ndarray:
        """Row ``i``'s CAM on the model input grid, float32 in [0, 1]."""
        return self.maps_u8[i].astype(np.float32) / 255.0

    def index_of(self, patient_id: str) -> int:
        return self.patient_ids.index(patient_id)

    def file_stem(self, i: int) -> str:
        """Overlay file stem: the study-local patient id (plus the row when a patient has several)."""
        pid = self.patient_ids[i]
        stem = safe_name(pid)
        if self.patient_ids.count(pid) > 1:
            stem += f"_row{int(self.rows[i]) + 1}"
        return stem


def method_slug(method: str) -> str:
    return check_method(method).replace("++", "pp")


def save_cams(c: OofCams) -> None:
    """Write ``c`` to its cache file ``c.path`` atomically."""
    with atomic_path(c.path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh,
                maps=c.maps_u8,
                rows=c.rows,
                patient_ids=np.array(c.patient_ids, dtype=str),
                folds=c.folds,
                y_true=c.y_true,
                logits=c.logits,
                signs=c.signs,
                oof_prob=c.oof_prob,
                frame_shapes=c.frame_shapes,
                grid=np.array(c.grid, np.int32),
                fingerprint=np.array(json.dumps(c.fingerprint, sort_keys=True)),
            )


def load_cams(
    path: Path, task: str, model: str, method: str, layer: str, target: str, fingerprint: dict
) -> OofCams | None:
    """The cached CAMs when their fingerprint matches, else None (stale or unreadable: recompute)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["fingerprint"])) != fingerprint:
                log.info("CAM cache %s is stale (the run, the method or the settings changed); recomputing", path.name)
                return None
            return OofCams(
                task=task,
                model=model,
                method=method,
                layer=layer,
                target=target,
                rows=z["rows"],
                patient_ids=[str(p) for p in z["patient_ids"]],
                folds=z["folds"],
                y_true=z["y_true"],
                logits=z["logits"],
                signs=z["signs"],
                oof_prob=z["oof_prob"],
                maps_u8=z["maps"],
                frame_shapes=z["frame_shapes"],
                path=path,
                fingerprint=json.loads(str(z["fingerprint"])),
                grid=tuple(int(v) for v in z["grid"]),
            )
    except (OSError, KeyError, ValueError) as exc:
        log.warning("CAM cache %s is unreadable (%s); recomputing", path.name, exc)
        return None


def write_overlays(cams: OofCams, store: FrameStore, *, refresh: bool = False) -> Path:
    """One overlay PNG per row at the original frame's resolution; returns the folder.

    File names are the study-local patient ids (see :meth:`OofCams.file_stem`).
    """
    folder = cams.path.parent / f"overlays_{method_slug(cams.method)}"
    stamp = folder / ".fingerprint"
    key = json.dumps(cams.fingerprint, sort_keys=True)
    if (
        not refresh
        and stamp.is_file()
        and stamp.read_text() == key
        and all((folder / f"{cams.file_stem(i)}.png").is_file() for i in range(len(cams)))
    ):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    for i in range(len(cams)):
        frame = store.frame(int(cams.rows[i]))
        f01 = display_frame(frame, store.percentiles)
        cam = cam_to_frame(cams.map(i), frame.shape)
        write_png(folder / f"{cams.file_stem(i)}.png", overlay_rgb(f01, cam))
    with atomic_path(stamp) as tmp:
        tmp.write_text(key)
    return folder
