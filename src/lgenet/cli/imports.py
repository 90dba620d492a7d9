"""``lgenet import`` and ``lgenet quantify`` sub-commands (wired in by :mod:`lgenet.cli`).

    lgenet import emidec ../shared/data/emidec --out emidec.csv [--frames-dir frames/]
    lgenet import nifti-masks --images 'imgs/*.nii.gz' --masks 'masks/*.nii.gz' --out cohort.csv \\
        --myo-labels 2,3,4 --lge-labels 3,4 --other-labels 0,1 --slice-axis 2 --basal-end last \\
        [--clinical clinical.csv --id-column case_id --event-column killip --event-min 2]
    lgenet import nifti-masks --images data/ --masks data/ --image-pattern '{id}_LGE.nii.gz' \\
        --mask-pattern '{id}_gd.nii.gz' --out cohort.csv
    lgenet import nifti-masks --pairs pairs.csv --out cohort.csv      # columns case_id,image,mask
    lgenet import dicom STUDIES_DIR --out cohort.csv [--id-map map.csv] [--prefer magnitude|psir] \\
        [--min-slices 2] [--link symlink|copy]
    lgenet quantify IMAGE.nii.gz MASK.nii.gz --out DIR [--method all] [--n-sd 2,3,5,6] [--remote auto|MASK] \\
        [--myo-labels 2,3,4 --other-labels 0,1]
    lgenet quantify --manifest cohort.csv --out DIR --label-method fwhm [--method all]
        (label values and geometry not given come from cohort.import.json; a per-row remote mask
        goes in a 'remote' column of the manifest)

Handlers return 0 and raise :class:`~lgenet.errors.LgenetError` on user errors (the CLI prints
them without a traceback, exit status 2).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lgenet.cli.options import float_list, int_list
from lgenet.conventions.files import import_sidecar
from lgenet.conventions.labels import EMIDEC
from lgenet.errors import ConfigError

__all__ = [
    "add_import_parser",
    "add_quantify_parser",
    "cmd_import_dicom",
    "cmd_import_emidec",
    "cmd_import_nifti_masks",
    "cmd_quantify",
]


def _print_counts(manifest: Path) -> None:
    side = import_sidecar(manifest)
    data = json.loads(side.read_text())
    c = data["counts"]
    pairing = data.get("pairing") or {}
    opts = data.get("options") or {}
    for what, opt in (("images", "image_pattern"), ("masks", "mask_pattern")):
        skipped = pairing.get(f"ignored_{what}") or []
        if skipped:
            names = ", ".join(Path(p).name for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
            print(
                f"ignored {len(skipped)} {what[:-1]} file(s) that do not match --{opt.replace('_', '-')} "
                f"{opts.get(opt) or '{id}.nii(.gz)'!r}: {names}"
            )
    print(f"manifest written to {manifest} ({side.name} beside it)")
    print(
        f"patients {c['patients']}, slices {c['slices']}; lge > {c['lge_threshold']:g} %: {c['lge_positive']} "
        f"(basal slice alone {c['lge_positive_basal_slice']}); event labelled {c['event_labelled']}, "
        f"positive {c['event_positive']}"
    )
    lge = opts.get("lge_labels")
    if lge is not None and c.get("patients") and c.get("lge_positive") == 0 and not c.get("any_enhancement", True):
        print(
            f"warning: no mask holds any voxel of the LGE label(s) {lge}: every burden is 0 %. If the masks code "
            "enhancement with other values, rerun with --lge-labels (and --myo-labels)"
        )


def cmd_import_emidec(a: argparse.Namespace) -> int:
    from lgenet.data.importers import import_emidec
    from lgenet.runs.paths import refuse_overwrite

    refuse_overwrite(a.out, [a.root], "--out", kind="file")  # never into the dataset it reads
    if a.frames_dir:
        refuse_overwrite(a.frames_dir, [a.root], "--frames-dir")
    out = import_emidec(a.root, a.out, frames_dir=a.frames_dir, event_min_killip=a.event_min_killip)
    _print_counts(Path(out))
    print(
        "note: event = Killip class >= II at presentation (a proxy, not a follow-up endpoint); "
        "killip must not be a covariate for the event task, group (N/P) not for the lge task"
    )
    return 0


def cmd_import_dicom(a: argparse.Namespace) -> int:
    import os

    from tqdm.auto import tqdm

    from lgenet.data.importers.dicom_studies import import_dicom_studies, intake_summary
    from lgenet.runs.paths import refuse_overwrite

    # never into the archive it reads: the linked series would be read as the archive's own files next time
    refuse_overwrite(a.out, [a.studies], "--out", kind="file")
    if a.id_map:
        refuse_overwrite(a.id_map, [a.studies, a.out], "--id-map", kind="file")
    total = sum(len(f) for _, _, f in os.walk(a.studies)) if Path(a.studies).is_dir() else 0
    with tqdm(total=total, desc="reading DICOM headers", unit="file", disable=None, leave=False) as bar:
        res = import_dicom_studies(
            a.studies,
            a.out,
            prefer=a.prefer,
            min_slices=a.min_slices,
            link=a.link,
            id_map=a.id_map,
            on_file=bar.update,
        )
    print(intake_summary(res))
    return 0


def cmd_import_nifti_masks(a: argparse.Namespace) -> int:
    from lgenet.data.importers import NiftiMaskImport, import_nifti_masks

    cols = None
    if a.clinical_columns:
        cols = {}
        for item in a.clinical_columns.split(","):
            src, _, dst = item.strip().partition("=")
            if src:
                cols[src] = dst or src
    if a.pairs:
        if a.images or a.masks or a.image_pattern or a.mask_pattern:
            raise ConfigError(
                "lgenet import nifti-masks: --pairs lists the images and masks itself; give either "
                "--pairs, or --images and --masks (with --image-pattern/--mask-pattern), not both"
            )
    elif not (a.images and a.masks):
        raise ConfigError(
            "lgenet import nifti-masks: give --images and --masks (folders or quoted globs), "
            "or --pairs pairs.csv (columns case_id,image,mask)"
        )
    options = NiftiMaskImport(
        image_pattern=a.image_pattern,
        mask_pattern=a.mask_pattern,
        pairs_csv=a.pairs,
        myo_labels=a.myo_labels,
        lge_labels=a.lge_labels,
        other_labels=a.other_labels,
        slice_axis=a.slice_axis,
        basal_end=a.basal_end,
        clinical_csv=a.clinical,
        id_column=a.id_column,
        clinical_columns=cols,
        event_column=a.event_column,
        event_min=a.event_min,
        followup_column=a.followup_column,
        frames_dir=a.frames_dir,
    )
    out = import_nifti_masks(a.images, a.masks, a.out, options)
    _print_counts(Path(out))
    return 0


def add_import_parser(subparsers) -> argparse.ArgumentParser:
    """``lgenet import {emidec,nifti-masks,dicom}``."""
    p = subparsers.add_parser(
        "import", help="make a manifest from a dataset of NIfTI images + label maps, or from a folder of DICOM studies"
    )
    sub = p.add_subparsers(dest="dataset", metavar="DATASET")
    sub.required = True

    e = sub.add_parser("emidec", help="the EMIDEC training set (100 LGE stacks with expert labels)")
    e.add_argument("root", help="EMIDEC folder (Case_*/Images, Case_*/Contours, clinical.csv)")
    e.add_argument("--out", required=True, help="manifest CSV to write")
    e.add_argument("--frames-dir", help="also write every slice as a one-slice NIfTI + frames.csv here")
    e.add_argument("--event-min-killip", type=int, default=2, help="event = Killip class >= this (default 2)")
    e.set_defaults(func=cmd_import_emidec)

    d = sub.add_parser(
        "dicom",
        help="a folder of whole DICOM studies: each study's LGE short-axis stack (lgenet.data.importers.dicom_studies)",
    )
    d.add_argument("studies", help="folder holding the DICOM studies, in any layout")
    d.add_argument("--out", required=True, help="manifest CSV to write (the linked series go in <stem>_series/)")
    d.add_argument(
        "--id-map",
        help="also write the mapping of the study-local IDs to the archive's patient IDs, UIDs and dates to this CSV "
        "(it holds identifiers: keep it apart from the results)",
    )
    d.add_argument(
        "--prefer",
        default="magnitude",
        choices=("magnitude", "psir"),
        help="which LGE image a study with both gives (default magnitude: what lgenet's models were trained on)",
    )
    d.add_argument("--min-slices", type=int, default=2, help="fewest parallel slices of a stack (default 2)")
    d.add_argument(
        "--link",
        default="symlink",
        choices=("symlink", "copy"),
        help="how each chosen series is put in <stem>_series/<ID>/ (default symlink; copy where links fail)",
    )
    d.set_defaults(func=cmd_import_dicom)

    n = sub.add_parser("nifti-masks", help="any image + label-map NIfTI pairs (paired by file name)")
    n.add_argument("--images", help="folder, file or quoted glob of image NIfTIs")
    n.add_argument("--masks", help="folder, file or quoted glob of label-map NIfTIs (same names by default)")
    n.add_argument(
        "--image-pattern",
        help="image file names, {id} = case ID, e.g. '{id}_LGE.nii.gz' "
        "(* and ? are wildcards; other files are ignored)",
    )
    n.add_argument("--mask-pattern", help="mask file names, {id} = case ID, e.g. '{id}_gd.nii.gz'")
    n.add_argument(
        "--pairs", help="CSV with columns case_id,image,mask (paths relative to it), instead of --images/--masks"
    )
    n.add_argument("--out", required=True, help="manifest CSV to write")
    n.add_argument("--myo-labels", type=int_list, default=EMIDEC.myo, help="myocardium label values (default 2,3,4)")
    n.add_argument("--lge-labels", type=int_list, default=EMIDEC.lge, help="enhanced label values (default 3,4)")
    n.add_argument(
        "--other-labels",
        type=int_list,
        default=EMIDEC.non_myo,
        help="other values allowed in the masks, e.g. background and cavity (default 0,1)",
    )
    n.add_argument("--slice-axis", type=int, default=2, choices=(0, 1, 2))
    n.add_argument("--basal-end", default="last", choices=("first", "last"))
    n.add_argument("--clinical", help="clinical CSV, one row per case")
    n.add_argument("--id-column", default="case_id", help="case-ID column of --clinical (default case_id)")
    n.add_argument("--clinical-columns", help="columns to import, SRC or SRC=NEW comma-separated (default all)")
    n.add_argument("--event-column", help="clinical column for the event label (0/1, or see --event-min)")
    n.add_argument("--event-min", type=float, help="event = 1 when the event column >= this value")
    n.add_argument("--followup-column", help="clinical column for followup_years")
    n.add_argument("--frames-dir", help="also write every slice as a one-slice NIfTI + frames.csv here")
    n.set_defaults(func=cmd_import_nifti_masks)
    return p


def cmd_quantify(a: argparse.Namespace) -> int:
    from lgenet.quantify import EMIDEC_LAYOUT, MaskLayout, QuantifySettings, quantify_files, quantify_manifest
    from lgenet.runs.grid import ensure_writable_dir

    ensure_writable_dir(a.out, "--out")
    from lgenet.runs.paths import refuse_overwrite

    refuse_overwrite(a.out, [a.image, a.mask, a.manifest], "--out")  # never over (or around) what it reads
    settings = QuantifySettings(
        method=a.method, n_sd=a.n_sd, fwhm_baseline=a.fwhm_baseline, remote_labels=a.remote_labels
    )

    if a.manifest:
        if a.image or a.mask:
            raise ConfigError("lgenet quantify: give either IMAGE MASK or --manifest, not both")
        if not a.label_method:
            raise ConfigError(
                "lgenet quantify: --manifest needs --label-method (e.g. fwhm or nsd5); "
                "see docs/results.md for their agreement with expert labels on EMIDEC"
            )
        out = quantify_manifest(
            a.manifest,
            a.out,
            label_method=a.label_method,
            given={
                "myo_labels": a.myo_labels,
                "other_labels": a.other_labels,
                "slice_axis": a.slice_axis,
                "basal_end": a.basal_end,
            },
            settings=settings,
            remote=a.remote,
            echo=print,
        )
        print(
            f"quantified manifest written to {out} (lge_percent = {a.label_method}; every burden column X has "
            f"a column X_source); per-case masks in {Path(a.out) / 'cases'}"
        )
        return 0
    if not (a.image and a.mask):
        raise ConfigError("lgenet quantify: give IMAGE and MASK (NIfTI), or --manifest")
    if a.label_method:
        raise ConfigError(
            "lgenet quantify: --label-method only applies with --manifest; for one case every "
            "method of --method is reported"
        )
    layout = MaskLayout(
        myo_labels=a.myo_labels if a.myo_labels is not None else EMIDEC_LAYOUT.myo_labels,
        other_labels=a.other_labels if a.other_labels is not None else EMIDEC_LAYOUT.other_labels,
        slice_axis=EMIDEC_LAYOUT.slice_axis if a.slice_axis is None else a.slice_axis,
        basal_end=a.basal_end or EMIDEC_LAYOUT.basal_end,
    )
    myo = layout.myo_labels
    s = quantify_files(a.image, a.mask, a.out, layout=layout, settings=settings, remote=a.remote)
    found = ", ".join(f"{v} ({n})" for v, n in s["labels_found"].items())
    print(f"case {s['case']}: mask label values (voxels): {found}; myocardium {list(myo)}")
    print(f"case {s['case']}: remote {s['remote_rule']}")
    for name, m in s["methods"].items():
        per = " ".join("-" if v is None else f"{v:.1f}" for v in m["percent_per_slice"])
        ml = f", {m['enhanced_ml']:.1f} mL" if m["enhanced_ml"] is not None else ""
        print(f"  {name:6s} whole LV {m['percent']:6.2f} %{ml}   per slice (apex->base): {per}")
    print(f"masks and {Path(s['files']['summary']).name} written to {a.out}")
    return 0


def add_quantify_parser(subparsers) -> argparse.ArgumentParser:
    """``lgenet quantify``."""
    p = subparsers.add_parser("quantify", help="LGE burden by n-SD and FWHM from an image + myocardium mask")
    p.add_argument("image", nargs="?", help="LGE image (NIfTI)")
    p.add_argument("mask", nargs="?", help="label map (NIfTI) on the image's grid")
    p.add_argument("--manifest", help="quantify every row (image + mask) of a manifest instead")
    p.add_argument("--label-method", help="with --manifest: the method whose burden becomes lge_percent")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument(
        "--myo-labels",
        type=int_list,
        default=None,
        help="myocardium label values (default: the manifest's import sidecar, else 2,3,4)",
    )
    p.add_argument(
        "--other-labels",
        type=int_list,
        default=None,
        help="other values allowed in the masks, e.g. background and cavity (default: the manifest's "
        "import sidecar, else 0,1); any value outside myocardium and other is refused",
    )
    p.add_argument(
        "--method", default="all", help="nsd, fwhm or all (default); with --manifest it must include --label-method"
    )
    p.add_argument("--n-sd", type=float_list, default=(2, 3, 5, 6), help="n of the n-SD rule (default 2,3,5,6)")
    p.add_argument(
        "--remote",
        default=None,
        help="'auto' (default) or a NIfTI mask of remote myocardium (with --manifest: a 'remote' column instead)",
    )
    p.add_argument(
        "--remote-labels", type=int_list, help="label values of the remote masks that mark remote (default non-zero)"
    )
    p.add_argument("--fwhm-baseline", default="remote", choices=("remote", "zero"))
    p.add_argument(
        "--slice-axis", type=int, default=None, choices=(0, 1, 2), help="default: the manifest's import sidecar, else 2"
    )
    p.add_argument(
        "--basal-end", default=None, choices=("first", "last"), help="default: the manifest's import sidecar, else last"
    )
    p.set_defaults(func=cmd_quantify)
    return p
