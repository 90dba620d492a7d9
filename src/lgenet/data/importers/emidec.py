"""The EMIDEC training set (``Case_*/Images``, ``Case_*/Contours``, ``clinical.csv``) as a manifest."""

from __future__ import annotations

from pathlib import Path

from lgenet.conventions.labels import EMIDEC
from lgenet.data.importers.cases import CaseError
from lgenet.data.importers.nifti_masks import NiftiMaskImport, import_nifti_masks
from lgenet.errors import DataError

__all__ = ["import_emidec", "EMIDEC_CLINICAL_MAP", "EMIDEC_COVARIATES", "EMIDEC_COVARIATE_NOTES"]

#: EMIDEC ``clinical.csv`` column -> manifest column. Columns not listed are not imported
#: (``source_row_case``, ``label_pathological`` duplicates ``group``, and the ``*_ml_src`` volumes
#: are computed from the expert contours, i.e. they *are* the LGE label).
EMIDEC_CLINICAL_MAP = {
    "group": "group",
    "sex": "sex",
    "age": "age",
    "tobacco": "tobacco",
    "overweight": "overweight",
    "hypertension": "hypertension",
    "diabetes": "diabetes",
    "familial_disease": "familial_disease",
    "ECG": "ecg_st_plus",
    "troponin": "troponin",
    "killip": "killip",
    "FEVG": "lvef",
    "NTP": "ntprobnp",
}

#: Clinical covariates (manifest names) known at presentation, for the covariates-only baseline.
EMIDEC_COVARIATES = (
    "sex",
    "age",
    "tobacco",
    "overweight",
    "hypertension",
    "diabetes",
    "familial_disease",
    "ecg_st_plus",
    "troponin",
    "killip",
    "lvef",
    "ntprobnp",
)

EMIDEC_COVARIATE_NOTES = {
    "sex": "0 = male, 1 = female (admission)",
    "age": "years (admission)",
    "tobacco": "EMIDEC code 0/1/2 (original 1/2/3 minus 1; meaning not documented); used as ordinal",
    "overweight": "1 = yes (admission)",
    "hypertension": "1 = yes (history, admission)",
    "diabetes": "1 = yes (history, admission)",
    "familial_disease": "1 = familial history of coronary artery disease (admission)",
    "ecg_st_plus": "ECG ST elevation, 1 = yes (presentation ECG)",
    "troponin": "troponin, raw value as published (peak/admission not documented)",
    "killip": "Killip class (max, 1-4). DEFINES the `event` proxy (Killip >= II): never a covariate "
    "for the event task; a fair covariate for the lge task",
    "lvef": "FEVG, left-ventricular ejection fraction %, raw value (modality not documented; may come "
    "from imaging during the stay, so not strictly 'at presentation')",
    "ntprobnp": "NT-proBNP, raw value",
    "group": "N/P = normal/pathological case folder; equals the whole-LV lge label in 95/100 cases, "
    "so NOT a fair covariate for the lge task (it is the diagnosis the images show)",
}


def import_emidec(
    root: str | Path,
    out_manifest: str | Path,
    *,
    frames_dir: str | Path | None = None,
    event_min_killip: int = 2,
) -> Path:
    """Import the EMIDEC training set at ``root`` into a manifest (see the module docstring).

    Labels: ``lge_percent`` from the expert contours ({3,4} / {2,3,4}); ``event`` = Killip class
    >= II (``event_min_killip``), a proxy for acute heart failure at presentation -- NOT the seed
    study's follow-up endpoint (``followup_years`` stays blank). Covariates: :data:`EMIDEC_CLINICAL_MAP`
    (``ECG`` -> ``ecg_st_plus``, ``FEVG`` -> ``lvef``, ``NTP`` -> ``ntprobnp``). ``killip`` is kept
    but defines ``event``; ``group`` (N/P) almost equals the ``lge`` label.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"EMIDEC folder {root} does not exist (expected Case_*/Images, Case_*/Contours, clinical.csv)")
    cases = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("Case_"))
    if not cases:
        raise DataError(f"EMIDEC folder {root} holds no Case_* folder")
    imgs, masks, ids = [], [], {}
    for c in cases:
        ip = _one(c / "Images", c.name, "image")
        mp = _one(c / "Contours", c.name, "mask (Contours)")
        imgs.append(ip)
        masks.append(mp)
        ids[str(ip)] = c.name
    clinical = root / "clinical.csv"
    if not clinical.is_file():
        raise DataError(
            f"EMIDEC clinical file {clinical} does not exist; it holds the covariates and Killip class "
            "that defines the event label"
        )
    options = NiftiMaskImport(
        myo_labels=EMIDEC.myo,
        lge_labels=EMIDEC.lge,
        other_labels=EMIDEC.non_myo,
        slice_axis=2,
        basal_end="last",
        clinical_csv=clinical,
        id_column="case_id",
        clinical_columns=EMIDEC_CLINICAL_MAP,
        event_column="killip",
        event_min=event_min_killip,
        case_ids=ids,
        frames_dir=frames_dir,
        dataset="emidec",
        notes={
            "event": f"proxy: Killip class >= {event_min_killip} at presentation (acute heart failure), "
            "not the seed study's follow-up endpoint; followup_years is blank",
            "covariates": EMIDEC_COVARIATE_NOTES,
            "covariates_at_presentation": list(EMIDEC_COVARIATES),
            "not_covariate_for": {"event": ["killip"], "lge": ["group", "lge_percent_basal"]},
            "not_imported": [
                "label_pathological (= group)",
                "source_row_case",
                "myo_ml_src, inf_ml_src, pmo_ml_src (volumes from the expert contours: the LGE label itself)",
            ],
            "orientation": "slice index 0 = apex, last = base (inferred by the dataset README); affines not physical",
            "licence": "EMIDEC, CC BY-NC-SA 4.0: non-commercial use; derived data under the same licence",
        },
    )
    return import_nifti_masks(imgs, masks, out_manifest, options)


def _one(folder: Path, case: str, what: str) -> Path:
    if not folder.is_dir():
        raise CaseError(case, f"folder {folder} for the {what} does not exist")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        raise CaseError(case, f"expected exactly one {what} file in {folder}, found {[p.name for p in files]}")
    return files[0]
