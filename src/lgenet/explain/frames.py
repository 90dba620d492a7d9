"""The cohort's frames, model inputs and heart masks, read on demand and kept in memory.

:class:`FrameStore` reads a manifest row exactly as training did (same slice rule, same NIfTI
conventions, same intensity percentiles) and, when the row has a ``mask``, the label map's frame
at the **same slice index** as the image (the mask must lie on the image's grid; a mask of another
shape is ignored with a warning, never resampled). Only safe metadata travels with a frame.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from lgenet.config import RunConfig
from lgenet.conventions.names import safe_name
from lgenet.data.manifest import Cohort
from lgenet.data.preprocess import Preprocessor
from lgenet.errors import ReaderError
from lgenet.io import read_frame

__all__ = ["FrameStore", "safe_name"]

log = logging.getLogger("lgenet")


class FrameStore:
    """Lazy, memoised access to a cohort's frames (by 0-based record index)."""

    def __init__(self, cohort: Cohort, cfg: RunConfig) -> None:
        self.cohort = cohort
        self.cfg = cfg
        self._frames: dict[int, tuple[np.ndarray, dict]] = {}
        self._masks: dict[int, np.ndarray | None] = {}

    @property
    def percentiles(self) -> tuple[float, float]:
        return tuple(self.cfg.intensity_percentiles)  # type: ignore[return-value]

    def _slice(self, i: int):
        rec = self.cohort.records[i]
        sl = rec.slice if rec.slice != "basal" else self.cfg.slice
        return sl if sl == "basal" else int(sl)

    def frame(self, i: int) -> np.ndarray:
        return self._read(i)[0]

    def meta(self, i: int) -> dict:
        return self._read(i)[1]

    def _read(self, i: int) -> tuple[np.ndarray, dict]:
        if i not in self._frames:
            rec = self.cohort.records[i]
            try:
                self._frames[i] = read_frame(
                    rec.image,
                    slice=self._slice(i),
                    nifti_slice_axis=self.cfg.nifti_slice_axis,
                    nifti_basal_end=self.cfg.nifti_basal_end,
                )
            except ReaderError as exc:
                raise ReaderError(f"row {rec.row} (patient {rec.patient_id}): {exc}") from None
        return self._frames[i]

    def inputs(self, rows: list[int], size: int) -> torch.Tensor:
        """(N, 1, size, size) model inputs, preprocessed as in training."""
        pre = Preprocessor(size, self.percentiles)
        if not rows:
            return torch.zeros(0, 1, size, size)
        return torch.stack([pre(self.frame(i)) for i in rows])

    def mask(self, i: int) -> np.ndarray | None:
        """Integer label frame aligned with the image frame, or None (no mask / unusable mask)."""
        if i in self._masks:
            return self._masks[i]
        rec = self.cohort.records[i]
        out = None
        if rec.mask is not None:
            frame, meta = self._read(i)
            idx = meta.get("slice_index")
            sl = idx if idx is not None else self._slice(i)
            try:
                m, mmeta = read_frame(
                    rec.mask,
                    slice=sl,
                    nifti_slice_axis=self.cfg.nifti_slice_axis,
                    nifti_basal_end=self.cfg.nifti_basal_end,
                )
            except ReaderError as exc:
                log.warning("row %d (patient %s): mask not usable for CAM checks: %s", rec.row, rec.patient_id, exc)
            else:
                n_img, n_mask = meta.get("n_slices"), mmeta.get("n_slices")
                if m.shape != frame.shape:
                    log.warning(
                        "row %d (patient %s): mask frame %s does not match the image frame %s; ignored",
                        rec.row,
                        rec.patient_id,
                        m.shape,
                        frame.shape,
                    )
                elif n_img and n_mask and n_img != n_mask:
                    log.warning(
                        "row %d (patient %s): mask has %s slices, image %s; ignored",
                        rec.row,
                        rec.patient_id,
                        n_mask,
                        n_img,
                    )
                else:
                    out = np.rint(m).astype(np.int16)
        self._masks[i] = out
        return out
