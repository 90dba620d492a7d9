"""``lgenet segment {train,apply,quality,finetune}`` (wired in by :mod:`lgenet.cli`).

lgenet segment train --manifest emidec.csv --out runs/seg
lgenet segment apply --run runs/seg --manifest cohort.csv --out runs/seg_cohort
lgenet segment apply --run runs/seg IMAGE_OR_SERIES... -o seg.csv
lgenet segment quality runs/seg
lgenet segment finetune --model runs/seg --manifest corrected.csv --out runs/centre2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lgenet.config import SegConfig
from lgenet.config.finetune import FinetuneConfig
from lgenet.errors import ConfigError
from lgenet.settings import OptionHelp, add_options, load_settings, values_from_args

__all__ = ["add_segment_parser"]


def _labels_from(a: argparse.Namespace) -> dict | None:
    """--labels, else the import sidecar's label values beside the manifest, else None (defaults)."""
    from lgenet.conventions.labels import label_convention
    from lgenet.data.importers import labels_from_import

    if a.labels:
        return label_convention(a.labels).to_dict()
    found = labels_from_import(a.manifest) if a.manifest else None
    if found is None:
        return None
    labels, side = found
    print(f"labels from {side.name}: {labels.to_dict()} (pass --labels to change)")
    return labels.to_dict()


def _settings_from(a: argparse.Namespace, cls):
    """The command's frozen settings: its --config file, the options given, and the labels (:func:`_labels_from`)."""
    over = values_from_args(a, cls)
    labels = _labels_from(a)
    if labels is not None:
        over["labels"] = labels
    return load_settings(cls, a.config, **over)


def cmd_segment_train(a: argparse.Namespace) -> int:
    from lgenet.workflows.segmentation import train_segmentation

    cfg = _settings_from(a, SegConfig)
    res = train_segmentation(
        cfg, progress=not a.quiet, executor=a.executor, workers=a.workers, ray_address=a.ray_address
    )
    print()
    print(res.table)
    print()
    print(f"run directory : {res.out_dir}")
    print(f"per patient   : {res.out_dir / 'seg_metrics.csv'}")
    print(f"masks         : {res.out_dir / 'masks'} (out-of-fold, on each input's voxel grid)")
    for f in res.figures:
        print(f"figure        : {f}")
    print(f"folds run: {res.fits_run}, resumed (already done): {res.fits_skipped}")
    return 0


def cmd_segment_apply(a: argparse.Namespace) -> int:
    from lgenet.segment import SegApplyOptions, apply_segmentation

    if a.model:  # a bundle: checked and unpacked once into the cache, then read as a run (since 0.3.0)
        from lgenet.runs.bundle import open_bundle

        a.run = str(open_bundle(a.model, kind="segmentation"))

    if a.manifest and a.paths:
        raise ConfigError("lgenet segment apply: give a --manifest or input paths, not both")
    if not a.manifest and not a.paths:
        raise ConfigError(
            "lgenet segment apply: give a --manifest cohort.csv (with --out DIR) or input paths (with -o)"
        )
    if a.manifest and not a.out:
        raise ConfigError("lgenet segment apply: --manifest needs --out DIR")
    if a.paths and not (a.output or a.out):
        raise ConfigError("lgenet segment apply: with IMAGE inputs give -o seg.csv (masks go beside it) or --out DIR")
    out = a.out
    if a.paths and a.output:
        o = Path(a.output)
        if o.is_dir():
            raise ConfigError(f"-o {o} is an existing folder; give a .csv file path")
        out = str(o.with_suffix("")) + "_seg" if not a.out else a.out
        from lgenet.runs.paths import refuse_overwrite

        refuse_overwrite(o, [a.run, *a.paths], "-o", kind="file")
    opts = SegApplyOptions(
        out=out,
        manifest=a.manifest,
        paths=a.paths,
        ids=a.ids,
        nifti_slice_axis=a.nifti_slice_axis,
        nifti_basal_end=a.nifti_basal_end,
        pixel_spacing=a.pixel_spacing,
        labels=a.labels,
        threads=a.num_threads,
        overlays=not a.no_overlays,
        dicom_seg=a.dicom_seg,
        rv_insertion_deg=a.rv_insertion_deg,
        progress=not a.quiet,
        engine=a.engine,
        second_look=not a.no_second_look,
        frame_scan=not a.no_frame_scan,
    )
    if a.reports and not a.manifest:
        raise ConfigError("--reports needs a --manifest cohort (the reports are written per patient of it)")
    res = apply_segmentation(a.run, opts)
    if a.reports:
        from tqdm.auto import tqdm

        from lgenet.report.patient import write_patient_reports

        with tqdm(total=len(res.rows), desc="patient reports", unit="patient", disable=a.quiet or None) as bar:
            write_patient_reports(res.csv.parent, on_patient=bar.update)
        print(f"patient reports: {res.csv.parent / 'reports'} (<ID>.html and <ID>.pdf)")
    csv_path = res.csv
    if a.paths and a.output:
        import shutil

        shutil.copyfile(res.csv, a.output)
        csv_path = Path(a.output)
    for r in res.rows:
        lge = r.get("lge_percent_pred")
        print(
            f"{r['patient_id']}: LGE {lge:.1f} % of LV myocardium (basal slice {r['lge_percent_basal_pred']:.1f} %)"
            if isinstance(lge, float) and lge == lge
            else f"{r['patient_id']}: {r.get('status') or 'no myocardium found'} (no LGE measure)"
        )
    if res.evaluation is not None:
        from lgenet.segment.evaluate import format_evaluation

        print(format_evaluation(res.evaluation))
        print(f"evaluation  : {res.csv.with_name('evaluation.json')}")
    print(f"per patient : {csv_path}")
    print(f"masks       : {res.masks_dir}")
    if res.manifest:
        print(f"manifest    : {res.manifest} (lge_percent = predicted burden)")
    return 0


def cmd_segment_quality(a: argparse.Namespace) -> int:
    from lgenet.runs.seg import SegRunDir
    from lgenet.segment.quality_fit import fit_run_quality

    rd = SegRunDir(a.run)
    rd.load_config()  # a finished segmentation run, or a clear error
    from lgenet.segment.as_applied import as_applied
    from lgenet.segment.train import summarise_segmentation

    with rd.lock(), rd.file_log():
        model = fit_run_quality(rd.path, progress=not a.quiet)
        as_applied(rd.path, progress=not a.quiet)  # its figures depend on the score's rows
        summary, table, _ = summarise_segmentation(rd, rd.load_config())
    a_ = model["cross_fitted"]["all"]

    def share(v):
        return "n/a" if v is None else f"{v:.0%}"

    print(
        f"quality score : {rd.path / 'quality.json'} ({model['fitted_on']['rows']} masks of "
        f"{model['fitted_on']['patients']} patients)"
    )
    print(
        f"cross-fitted  : Dice < 0.6 flagged {share(a_['bad_flagged'])} (n={a_['n_bad']}), Dice >= 0.75 flagged "
        f"{share(a_['good_flagged'])} (n={a_['n_good']}), Spearman {a_['spearman']:.2f}"
    )
    print(f"per mask      : {rd.path / 'quality_rows.csv'}")
    print(table)
    return 0


def cmd_segment_measure(a: argparse.Namespace) -> int:
    from lgenet.segment.measure import MeasureOptions, measure_masks

    res = measure_masks(
        MeasureOptions(
            manifest=a.manifest,
            masks=a.masks,
            out=a.out,
            dicom_seg=a.dicom_seg,
            labels=a.labels,
            rv_insertion_deg=a.rv_insertion_deg,
            overlays=not a.no_overlays,
        )
    )
    for r in res["rows"]:
        v = r["lge_percent"]
        shown = f"LGE {v:.1f} % of LV myocardium" if v == v else f"no measure ({r['notes']})"
        print(f"{r['patient_id']}: {shown}")
    print(f"measures: {res['measures']}; manifest with the corrected burdens: {res['manifest']}")
    return 0


def cmd_segment_finetune(a: argparse.Namespace) -> int:
    from lgenet.segment.finetune import finetune_segmentation

    cfg = _settings_from(a, FinetuneConfig)
    res = finetune_segmentation(cfg, progress=not a.quiet)
    print()
    print(res.table)
    print()
    print(f"adapted run   : {res.out_dir}" + ("" if cfg.final else " (--no-final: no models)"))
    print(f"per case      : {res.out_dir / 'finetune_rows.csv'}")
    if cfg.final:
        print(f"apply it      : lgenet segment apply --run {res.out_dir} --manifest COHORT.csv --out DIR")
    print(f"fits run: {res.fits_run}, resumed (already done): {res.fits_skipped}")
    return 0


def add_segment_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("segment", help="learned LV / myocardium / enhancement segmentation and automatic LGE %%")
    sub = p.add_subparsers(dest="segment_command", metavar="ACTION")
    sub.required = True

    t = sub.add_parser(
        "train",
        help="K-fold segmentation CV on a manifest with expert masks (out-of-fold masks, Dice, LGE %% agreement, AUC)",
    )
    t.add_argument("--config", help="YAML file of SegConfig parameters (options override it)")
    t.add_argument(
        "--labels",
        help="mask label values: a convention (emidec, myops) or e.g. cavity=1,myo=2+3+4,lge=3+4,other=0 (default: EMIDEC's, "
        "or those the import recorded beside the manifest)",
    )
    add_options(t, SegConfig, required=("manifest", "out"))
    t.add_argument(
        "--executor",
        choices=["local", "process", "ray"],
        default="local",
        help="who runs the folds: this process (local, default), --workers worker processes (process) "
        "or Ray tasks (ray; pip install 'lgenet[ray]')",
    )
    t.add_argument("--workers", type=int, default=1, help="folds at a time with --executor process (default 1)")
    t.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --executor ray: the cluster to join (default: $RAY_ADDRESS, else a local Ray)",
    )
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=cmd_segment_train)

    ap = sub.add_parser("apply", help="segment a cohort (or single stacks) with a trained run's fold ensemble")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="the --out of `lgenet segment train` (or `segment finetune`)")
    src.add_argument(
        "--model",
        help="a model bundle instead of a run: NAME.lgenet (lgenet model export), or hf://owner/repo[/file.lgenet] "
        "from a hub when online",
    )
    ap.add_argument("--manifest", help="cohort CSV (patient_id, image; masks optional: Dice is then reported)")
    ap.add_argument("--out", help="output folder (masks/, overlays/, segmentation.csv, manifest.csv)")
    ap.add_argument("-o", "--output", help="with input paths: the per-input CSV (masks in <name>_seg/ beside it)")
    ap.add_argument(
        "--ids",
        type=lambda s: [v.strip() for v in s.split(",")],
        help="study-local ids for the input paths, one per input, in order (default input_001...)",
    )
    add_options(
        ap,
        SegConfig,
        only=("nifti_slice_axis", "nifti_basal_end", "pixel_spacing", "num_threads"),
        wording=OptionHelp(
            notes={
                **dict.fromkeys(("nifti_slice_axis", "nifti_basal_end", "pixel_spacing"), "default: the run's"),
                "num_threads": "torch threads of the segmentation; 1 is fastest on a busy machine (default: torch's)",
            }
        ),
    )
    ap.add_argument(
        "--labels",
        help="label values of the manifest's masks (for Dice): a convention (emidec, myops) or e.g. "
        "cavity=500,myo=200+1220+2221,lge=2221,other=0+600 (default: those the import recorded beside the "
        "manifest, else the run's)",
    )
    ap.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    ap.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="run the networks on torch, or on ONNX Runtime (exported once per fold model into the cache; no MONAI "
        "import, so a cold start is seconds faster; the same masks within a measured tolerance, not bit for bit: "
        "docs/results/performance.md); auto: onnx for a --model bundle when onnxruntime is installed, else torch",
    )
    ap.add_argument(
        "--no-second-look",
        action="store_true",
        help="keep the first mask even where the quality score doubts it (default: a doubted mask is segmented "
        "again at the other places the localisers weighed and replaced by one the score trusts; a note says so)",
    )
    ap.add_argument(
        "--no-frame-scan",
        action="store_true",
        help="in the second look, stop at the places the localisers weighed (default: when none gives a mask the "
        "score trusts, the localisers look on canvases over the whole frame for more)",
    )
    ap.add_argument(
        "--dicom-seg",
        action="store_true",
        help="also write a DICOM SEG of each DICOM input's mask in dicom_seg/ and a DICOM SR measurement report "
        "(TID 1500) of each measured one in dicom_sr/ (for 3D Slicer, OHIF, a PACS); these files carry the "
        "source's patient and study identifiers, as such objects must",
    )
    ap.add_argument(
        "--rv-insertion-deg",
        type=float,
        help="AHA segments: the anterior RV insertion on the displayed slice (rows down), degrees counter-clockwise "
        "from 3 o'clock, the septum counter-clockwise from it (default: from the image's patient axes, approximate; "
        "needed where the geometry is a placeholder, as in EMIDEC)",
    )
    ap.add_argument(
        "--reports",
        action="store_true",
        help="also write a report per patient, reports/<ID>.html and .pdf (every slice with its mask, the numbers "
        "and their definitions, the bullseye, the checks, the model and its accuracy)",
    )
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("paths", nargs="*", help="DICOM series folders, NIfTI stacks (or 2-D images)")
    ap.set_defaults(func=cmd_segment_apply)

    qp = sub.add_parser(
        "quality",
        help="fit a finished run's quality score (quality.json: predicts each mask's myocardium Dice; "
        "`segment train` does this itself since 0.3.0)",
    )
    qp.add_argument("run", help="the --out of `lgenet segment train`")
    qp.add_argument("-q", "--quiet", action="store_true")
    qp.set_defaults(func=cmd_segment_quality)

    mp = sub.add_parser(
        "measure",
        help="measure again on corrected masks (ITK-SNAP / 3D Slicer edits of segment apply's masks or DICOM SEGs): "
        "every measure, the AHA segments and a manifest whose lge_percent comes from them",
    )
    mp.add_argument("--manifest", required=True, help="the cohort manifest the masks belong to")
    mp.add_argument(
        "--masks", required=True, help="folder of corrected masks, <ID>.nii.gz (or <ID>.dcm with --dicom-seg)"
    )
    mp.add_argument("--out", required=True, help="new output folder (measures.csv, aha_segments.csv, manifest.csv)")
    mp.add_argument("--dicom-seg", action="store_true", help="the corrected masks are DICOM SEGs (<ID>.dcm)")
    mp.add_argument(
        "--labels",
        help="label values of the NIfTI masks (default: the segmentation run's, through apply.json beside --masks)",
    )
    mp.add_argument("--rv-insertion-deg", type=float, help="orients the AHA segments (see segment apply)")
    mp.add_argument("--no-overlays", action="store_true", help="skip the bullseye PNGs")
    mp.set_defaults(func=cmd_segment_measure)

    fp = sub.add_parser(
        "finetune",
        help="adapt a trained run to a new centre with its corrected cases (own folds: the accuracy is measured on "
        "cases each fine-tuning did not see), then fine-tune on all of them",
    )
    fp.add_argument("--config", help="YAML file of FinetuneConfig parameters (options override it)")
    fp.add_argument(
        "--labels",
        help="label values of the corrected masks: a convention (emidec, myops) or e.g. cavity=1,myo=2+3+4,lge=3+4,"
        "other=0 (default: those the import recorded beside the manifest, else EMIDEC's)",
    )
    add_options(fp, FinetuneConfig, required=("model", "manifest", "out"))
    fp.add_argument("-q", "--quiet", action="store_true")
    fp.set_defaults(func=cmd_segment_finetune)
    return p
