"""The intensity normalisations of the segmentation networks' inputs."""

from __future__ import annotations

__all__ = ["NORMALISATION_METHODS"]

#: the ``tissue_normalise`` methods (a segmentation run records the one its networks were trained with):
#: 1 the tissue above an Otsu threshold, 2 the filled body outline with zero fill left out, 3 as 2 with the body's
#: threshold and high percentile robust to bright spots (surface coils, wrap-around; since 0.3.0)
NORMALISATION_METHODS = (1, 2, 3)
