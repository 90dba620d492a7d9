"""The intensity normalisations of the segmentation networks' inputs."""

from __future__ import annotations

__all__ = ["NORMALISATION_METHODS"]

#: the ``tissue_normalise`` methods (a segmentation run records the one its networks were trained with):
#: 1 the tissue above an Otsu threshold, 2 the filled body outline with zero fill left out
NORMALISATION_METHODS = (1, 2)
