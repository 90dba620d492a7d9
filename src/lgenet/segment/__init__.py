"""Learned LGE segmentation: ``lgenet segment train`` (K-fold CV) and ``lgenet segment apply``.

``train_segmentation(cfg)`` trains, for each patient-level fold, a localiser and a segmenter
(:mod:`lgenet.segment.learn`, :mod:`lgenet.segment.loop`, :mod:`lgenet.segment.augment`) on the training patients' stacks and expert masks, then
segments the fold's held-out patients: every patient's out-of-fold mask comes from the one fold
model that never saw it. The folds are those ``lgenet run`` assigns on the same manifest (stratified
on ``lge``), so the segmentation's out-of-fold burden can serve as a model of the same grid. Run
directory::

    seg_config.yaml       the resolved SegConfig (a resume must match it)
    inputs.json           manifest SHA-256 and a content hash of every patient's stack and mask
    profile.json          the training stacks' intensity profile (apply warns on unlike inputs)
    folds_seg.csv         patient_id, fold, label (lge)
    fits/seg/fold<k>/     model.pt (both networks + spec), predictions.csv (held-out patients), fit.json
    masks/<patient>.nii.gz   out-of-fold masks on the input's voxel grid (same shape and affine)
    seg_metrics.csv       one row per patient: Dice (myocardium, enhancement, cavity), expert and
                          predicted LGE % (whole LV, basal slice; network class, n-SD, FWHM), sizes
    seg_summary.json      means, burden agreement (ICC, Bland-Altman), AUCs with CIs and n
    quality.json, quality_rows.csv   the quality score and the masks it was fitted on (lgenet.segment.quality_fit)
    as_applied/           the out-of-fold figures as segment apply runs the models (lgenet.segment.as_applied):
                          seg_metrics.csv, looks.csv (doubted masks), masks/ (those a second look replaced)
    figures/              agreement plots, best/worst-Dice overlay gallery; seg_report.html

``apply_segmentation`` runs the fold ensemble (mean probabilities of the K folds) on a cohort
without masks (or single inputs) and writes masks, overlays, per-patient measures and a manifest
whose ``lge_percent`` is the predicted burden (the previous value, if any, kept as
``lge_percent_original``), with a source column for each.
"""

from __future__ import annotations

from lgenet.runs.seg import SegRunDir, load_segmenter
from lgenet.segment.apply import SegApplyOptions, SegApplyResult, apply_segmentation
from lgenet.segment.cases import Case, cases_of, read_case, safe_id
from lgenet.segment.fold import SEG_METRIC_FIELDS, SegFoldJob
from lgenet.segment.train import (
    SegRunResult,
    format_seg_summary,
    segmentation_folds,
    summarise_segmentation,
    train_segmentation,
)

__all__ = [
    "SegRunDir",
    "SegFoldJob",
    "train_segmentation",
    "apply_segmentation",
    "SegRunResult",
    "SegApplyResult",
    "SegApplyOptions",
    "load_segmenter",
    "summarise_segmentation",
    "format_seg_summary",
    "SEG_METRIC_FIELDS",
    "Case",
    "cases_of",
    "read_case",
    "safe_id",
    "segmentation_folds",
]
