"""Synthetic demo cohort: LGE short-axis DICOM series, NIfTI label maps and a manifest.

:func:`make_cohort` writes a complete, self-consistent study that mimics the seed cohort
(Azoulay et al., suspected cardiac sarcoidosis, 116 patients: 57% without LGE, 16% with LGE
burden > 5.7% of the myocardium, 20% clinical events, median follow-up ~5 y)::

    out_dir/
        manifest.csv              patient_id,image,slice,lge_percent,event,followup_years,
                                  age,sex,lvef,mask
        cohort_summary.json       the statistics actually reached (fractions, burden, events...)
        truth.csv                 per-patient phantom facts (basal burden, target, blobs, spacing)
        dicom/SYN001/IM_<hex>.dcm one MR Image Storage file per slice (shuffled file names)
        masks/SYN001.nii.gz       label map (x, y, slice); data[:, :, k].T = frame k, apex -> base

Images come from :mod:`lgenet.data.phantom` (label codes: 0 background, 1 LV cavity,
2 myocardium, 3 LGE, 4 RV cavity). ``lge_percent`` in the manifest is always *measured* on the
phantom's own label maps (whole LV, all slices), never the sampled target.

Clinical columns:
    ``event``: drawn from a latent logistic model ``b*log1p(lge%) + covariate effects + noise``;
    the ``round(event_rate * n)`` patients with the highest latent value have the event, so the
    overall rate is exact and the rate is clearly higher in the LGE > 5.7% group.
    ``followup_years``: time to event, or to censoring for the others (median about 5 y).
    ``age`` (years), ``sex`` (1 = female, 0 = male), ``lvef`` (%, lower with more LGE).

DICOM geometry: an oblique short-axis plane (rows toward patient left, columns toward posterior,
both perpendicular to the LV long axis), slice normal ``n = row x col`` pointing from the apex
(left-anterior-inferior) toward the base, ImagePositionPatient stepping along ``+n`` from apex to
base, so sorting by ``ImagePositionPatient . n`` gives apex -> base. InstanceNumber counts from
the **base** (1 = basal slice, as many scanners acquire), and file names are random: readers must
sort by geometry.

Identifiers: with ``identifiers="fake"`` every header carries recognisable *fake* identifiers
(``SYNTHETIC^PATIENT0007``, ``MRN-SYN-0007``, birth date, accession number, institution...) that
differ from the study-local ``patient_id``, so that privacy checks downstream have something to
find. Everything is deterministic: the same arguments give byte-identical files.

Rooms: :mod:`~lgenet.data.synth.cohort` (the writer), :mod:`~lgenet.data.synth.dicom` (the series
and label maps), :mod:`~lgenet.data.synth.identifiers`, :mod:`~lgenet.data.synth.outcomes` (the
burden targets, the hazard model and the summary statistics).
"""

from __future__ import annotations

from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.data.synth.cohort import MANIFEST_COLUMNS, CohortSpec, make_cohort, write_cohort
from lgenet.data.synth.dicom import (
    SERIES_DESCRIPTION,
    TRANSFER_SYNTAXES,
    SaxGeometry,
    SeriesHeader,
    sax_orientation,
    write_dicom_series,
    write_label_nifti,
)
from lgenet.data.synth.identifiers import IDENTIFIER_KEYWORDS, fake_identifiers
from lgenet.data.synth.outcomes import HAZARD, draw_followup, tabular_cohort, true_log_hazard

__all__ = [
    "make_cohort",
    "write_cohort",
    "CohortSpec",
    "fake_identifiers",
    "IDENTIFIER_KEYWORDS",
    "MANIFEST_COLUMNS",
    "LGE_THRESHOLD",
    "SERIES_DESCRIPTION",
    "TRANSFER_SYNTAXES",
    "sax_orientation",
    "SaxGeometry",
    "SeriesHeader",
    "write_dicom_series",
    "write_label_nifti",
    "HAZARD",
    "true_log_hazard",
    "draw_followup",
    "tabular_cohort",
]
