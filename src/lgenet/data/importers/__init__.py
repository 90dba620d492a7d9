"""Dataset importers: image + label-map NIfTI pairs -> an lgenet cohort manifest.

Two entry points:

* :func:`import_nifti_masks` (:mod:`lgenet.data.importers.nifti_masks`) -- any dataset of NIfTI images with label-map masks on the same voxel
  grid. You declare which label values are myocardium, which of those are enhancement (LGE) and
  which other values may appear (background, cavity...); the slice axis and which end is basal.
* :func:`import_emidec` (:mod:`lgenet.data.importers.emidec`) -- the EMIDEC training set (``Case_*/Images``, ``Case_*/Contours``,
  ``clinical.csv``) with its labels (0 background, 1 cavity, 2 myocardium, 3 infarct, 4 no-reflow;
  myocardium = {2,3,4}, LGE = {3,4}), its clinical table and the ``event`` proxy.

Per patient the manifest gets one row pointing at the *volume* with ``slice=basal`` (the reader
takes the basal frame), the whole-LV LGE burden ``lge_percent`` (enhanced / myocardial voxels x
100, all slices pooled) and the basal-slice burden ``lge_percent_basal``, ``n_slices``, the mask,
and the clinical covariates. With ``frames_dir`` every short-axis slice is also written as a
one-slice NIfTI (image and mask) plus a long ``frames.csv`` manifest (one row per slice, patient
labels repeated, ``slice_index`` apex -> base, ``lge_percent_slice``) for multi-slice work.

Images and masks are paired as files by case ID: by default the file name without ``.nii(.gz)``
(same names in both folders); with ``image_pattern``/``mask_pattern`` such as ``'{id}_LGE.nii.gz'``
and ``'{id}_gd.nii.gz'`` the ``{id}`` part of each file name (``*``/``?`` are wildcards; files
that do not match are ignored and listed in the sidecar); or from a ``pairs_csv`` with columns
``case_id,image,mask`` (paths relative to that CSV), see :func:`read_pairs_csv`. An image without
a mask or a mask without an image is refused, naming the case.

Voxels are paired by array index: the affines are never compared or resampled through
(EMIDEC's are not physical). A case is refused, with a message naming it, when: a file is not
NIfTI or cannot be read; mask and image grids (array shapes) differ; the mask holds a value that
was not declared; the mask has no myocardium at all, or none on the basal slice; its clinical row
is missing. A sidecar ``<manifest stem>.import.json`` records the options, counts and notes on the
covariates (which ones leak a label; see :data:`EMIDEC_COVARIATE_NOTES`).
"""

from __future__ import annotations

from lgenet.data.importers.cases import CaseError, CaseStats, case_stats, import_labels, labels_from_import
from lgenet.data.importers.emidec import (
    EMIDEC_CLINICAL_MAP,
    EMIDEC_COVARIATE_NOTES,
    EMIDEC_COVARIATES,
    import_emidec,
)
from lgenet.data.importers.nifti_masks import NIFTI_MASK_DEFAULTS, NiftiMaskImport, import_nifti_masks
from lgenet.data.importers.pairing import find_nifti, read_pairs_csv

__all__ = [
    "labels_from_import",
    "CaseError",
    "CaseStats",
    "NiftiMaskImport",
    "NIFTI_MASK_DEFAULTS",
    "import_emidec",
    "import_nifti_masks",
    "import_labels",
    "case_stats",
    "find_nifti",
    "read_pairs_csv",
    "EMIDEC_CLINICAL_MAP",
    "EMIDEC_COVARIATES",
    "EMIDEC_COVARIATE_NOTES",
]
