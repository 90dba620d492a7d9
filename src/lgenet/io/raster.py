"""PNG / TIFF reader (Pillow): one 2-D frame, gray float32.

8-bit and 16-bit gray keep their values; 32-bit integer and float TIFFs are read as they are;
RGB(A), palette, CMYK and YCbCr images become gray by BT.601 luminance (alpha is ignored, noted in
``meta['notes']``). Multi-page TIFFs are refused. Pixel spacing is unknown (``None``): PNG/TIFF
resolution tags are print resolutions, not millimetres.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lgenet.errors import ReaderError
from lgenet.io.meta import build_meta, luminance

__all__ = ["RASTER_SUFFIXES", "raster_format", "read_raster"]

RASTER_SUFFIXES = {".png": "png", ".tif": "tiff", ".tiff": "tiff"}
_GRAY_BITS = {"1": 1, "L": 8, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}
_TO_RGB = {"P", "PA", "CMYK", "YCbCr", "LAB", "HSV"}


def raster_format(path: str | Path) -> str | None:
    """'png' or 'tiff' from the suffix, else None."""
    return RASTER_SUFFIXES.get(Path(path).suffix.lower())


def read_raster(path: str | Path) -> tuple[np.ndarray, dict]:
    """Read a PNG/TIFF as a (H, W) float32 frame and safe metadata."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    fmt = raster_format(path) or "png"
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ReaderError(
            f"{path}: the image is too large to be an LGE frame (over {Image.MAX_IMAGE_PIXELS:,} pixels, Pillow's "
            "decompression-bomb limit); check the file, or crop/resample it to the heart's field of view"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ReaderError(
            f"{path}: image file is unreadable (corrupt, truncated or not a {fmt.upper()}?): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    try:
        with img:
            if getattr(img, "n_frames", 1) > 1:
                raise ReaderError(
                    f"{path}: TIFF holds {img.n_frames} pages; lgenet reads one frame per image "
                    "file. Save the wanted frame as its own file (or use a NIfTI/DICOM stack)."
                )
            mode = img.mode
            if mode in _GRAY_BITS:
                arr = np.asarray(img.convert("L") if mode == "1" else img)
                frame = arr.astype(np.float32)
                bits = _GRAY_BITS[mode]
            elif mode == "LA":
                frame = np.asarray(img)[..., 0].astype(np.float32)
                bits = 8
                notes.append("alpha channel ignored")
            elif mode in ("RGB", "RGBA", "RGBX") or mode in _TO_RGB:
                rgb = np.asarray(img if mode in ("RGB", "RGBA", "RGBX") else img.convert("RGB"))
                frame = luminance(rgb)
                bits = 8
                notes.append(f"colour image (mode {mode}) converted to gray by BT.601 luminance")
            else:
                raise ReaderError(f"{path}: image mode {mode!r} is not supported; save it as 8- or 16-bit gray or RGB.")
    except ReaderError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ReaderError(
            f"{path}: image file is unreadable (corrupt, truncated or not a {fmt.upper()}?): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    if frame.ndim != 2:
        raise ReaderError(f"{path}: expected a 2-D image, got an array of shape {frame.shape}.")
    if not np.all(np.isfinite(frame)):
        raise ReaderError(f"{path}: image holds NaN or infinite values.")
    meta = build_meta(
        format=fmt,
        source_kind="file",
        shape=frame.shape,
        slice_index=0,
        n_slices=1,
        basal_rule="single 2-D image: used as given (no stack to choose from)",
        photometric=mode,
        bits=bits,
        notes=notes,
    )
    return np.ascontiguousarray(frame), meta
