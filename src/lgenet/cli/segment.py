"""``lgenet segment {train,apply}`` (wired in by :mod:`lgenet.cli`).

lgenet segment train --manifest emidec.csv --out runs/seg
lgenet segment apply --run runs/seg --manifest cohort.csv --out runs/seg_cohort
lgenet segment apply --run runs/seg IMAGE_OR_SERIES... -o seg.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lgenet.cli.options import int_list
from lgenet.errors import ConfigError

__all__ = ["add_segment_parser"]


def _labels_from(a: argparse.Namespace) -> dict | None:
    """--labels, else the import sidecar's label values beside the manifest, else None (defaults)."""
    from lgenet.conventions.labels import SegLabels

    if a.labels:
        return SegLabels.parse(a.labels).to_dict()
    if a.manifest:
        side = Path(a.manifest).with_name(Path(a.manifest).stem + ".import.json")
        if side.is_file():
            import json

            try:
                opts = json.loads(side.read_text()).get("options", {})
            except ValueError:
                return None
            myo, lge, other = opts.get("myo_labels"), opts.get("lge_labels"), opts.get("other_labels")
            if myo and lge is not None:
                other = [int(v) for v in (other or [0])]
                cavity = [1] if 1 in other else []
                labels = SegLabels(
                    cavity=tuple(cavity),
                    myo=tuple(myo),
                    lge=tuple(lge),
                    other=tuple(v for v in other if v not in cavity),
                )
                print(f"labels from {side.name}: {labels.to_dict()} (pass --labels to change)")
                return labels.to_dict()
    return None


def cmd_segment_train(a: argparse.Namespace) -> int:
    from lgenet.config import SegConfig
    from lgenet.workflows.segmentation import train_segmentation

    over = {
        k: getattr(a, k)
        for k in (
            "manifest",
            "out",
            "folds",
            "seed",
            "stratify",
            "epochs",
            "loc_epochs",
            "loc_shift_mm",
            "batch_size",
            "lr",
            "spacing",
            "crop",
            "device",
            "precision",
            "num_threads",
            "lge_threshold",
            "nifti_slice_axis",
            "nifti_basal_end",
            "pixel_spacing",
            "normalisation",
            "coarse_shift_mm",
            "coarse_margin",
            "res_units",
            "aug_intensity_scale",
            "aug_intensity_shift",
            "loader_workers",
        )
        if getattr(a, k) is not None
    }
    if a.channels:
        over["channels"] = a.channels
    if a.no_augment:
        over["augment"] = False
    if a.batch_augment:
        over["batch_augment"] = True
    if a.per_sample_augment:
        over["batch_augment"] = False
    if a.no_tta:
        over["tta"] = False
    if a.regions:
        over["regions"] = True
    labels = _labels_from(a)
    if labels is not None:
        over["labels"] = labels
    if a.config:
        import yaml

        p = Path(a.config)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {p} must hold a mapping of parameter: value")
        data.update(over)
        over = data
    cfg = SegConfig.from_dict(over, source=a.config or "options")
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
    from lgenet.segment import apply_segmentation

    if a.manifest and a.paths:
        raise ConfigError("lgenet segment apply: give a --manifest or input paths, not both")
    if not a.manifest and not a.paths:
        raise ConfigError(
            "lgenet segment apply: give a --manifest cohort.csv (with --out DIR) or input paths (with -o)"
        )
    if a.manifest and not a.out:
        raise ConfigError("lgenet segment apply --manifest needs --out DIR")
    if a.paths and not (a.output or a.out):
        raise ConfigError("lgenet segment apply IMAGE...: give -o seg.csv (masks go beside it) or --out DIR")
    out = a.out
    if a.paths and a.output:
        o = Path(a.output)
        if o.is_dir():
            raise ConfigError(f"-o {o} is an existing folder; give a .csv file path")
        out = str(o.with_suffix("")) + "_seg" if not a.out else a.out
    res = apply_segmentation(
        a.run,
        out=out,
        manifest=a.manifest,
        paths=a.paths,
        ids=a.ids,
        nifti_slice_axis=a.nifti_slice_axis,
        nifti_basal_end=a.nifti_basal_end,
        pixel_spacing=a.pixel_spacing,
        overlays=not a.no_overlays,
        progress=not a.quiet,
    )
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
            else f"{r['patient_id']}: no myocardium found"
        )
    print(f"per patient : {csv_path}")
    print(f"masks       : {res.masks_dir}")
    if res.manifest:
        print(f"manifest    : {res.manifest} (lge_percent = predicted burden)")
    return 0


def add_segment_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("segment", help="learned LV / myocardium / enhancement segmentation and automatic LGE %%")
    sub = p.add_subparsers(dest="segment_command", metavar="ACTION")
    sub.required = True

    t = sub.add_parser(
        "train",
        help="K-fold segmentation CV on a manifest with expert masks (out-of-fold masks, Dice, LGE %% agreement, AUC)",
    )
    t.add_argument("--manifest", required=True, help="cohort CSV whose rows have an image stack and its mask")
    t.add_argument("--out", required=True, help="run directory (a rerun resumes finished folds)")
    t.add_argument("--config", help="YAML file of SegConfig parameters (options override it)")
    t.add_argument(
        "--labels",
        help="mask label values, e.g. cavity=1,myo=2+3+4,lge=3+4,other=0 (default: EMIDEC's, "
        "or those the import recorded beside the manifest)",
    )
    t.add_argument("--folds", type=int, help="folds (default 4, the same patient folds as `lgenet run`)")
    t.add_argument("--seed", type=int, help="seed of the folds and the training (default 0)")
    t.add_argument(
        "--stratify",
        choices=["lge", "event"],
        help="task whose folds the segmentation uses (default lge); the grid's roi/stack families need "
        "the segmentation folds of their task",
    )
    t.add_argument(
        "--epochs",
        type=int,
        help="segmenter epochs (default 120, for ~30 min on 2 CPU cores; on EMIDEC 240 "
        "gained 0.009 of myocardium Dice at 2x the time, and 300 no more than 240: "
        "docs/results.md, configuration 15)",
    )
    t.add_argument("--loc-epochs", type=int, help="localiser epochs (default 15)")
    t.add_argument(
        "--loc-shift-mm",
        dest="loc_shift_mm",
        type=float,
        help="how far (mm) the localiser's training canvases are shifted (default 20)",
    )
    t.add_argument(
        "--coarse-shift-mm",
        dest="coarse_shift_mm",
        type=float,
        help="> 0 (default 120): also train a coarse localiser on canvases shifted by up to this many mm, which "
        "finds a heart far from the frame centre (large fields of view); the localiser also looks there and "
        "keeps that canvas if it sees a larger LV there (--coarse-margin). 0: none (runs before 2026-11-27, "
        "session 8)",
    )
    t.add_argument(
        "--coarse-margin",
        type=float,
        help="with --coarse-shift-mm: the proposed canvas wins only if the localiser's LV mass there exceeds "
        "the frame-centred canvas's by this factor (default 1.2)",
    )
    t.add_argument(
        "--normalisation",
        type=int,
        choices=(1, 2),
        help="input intensity normalisation: 2 (default) percentiles over the filled body outline with zero "
        "fill left out, so frames with and without a stored intensity offset look alike; 1 the Otsu-body "
        "method of runs made before 2026-11-27 (session 6)",
    )
    t.add_argument("--batch-size", type=int, help="default 16")
    t.add_argument("--lr", type=float, help="Adam learning rate (default 0.001, polynomial decay)")
    t.add_argument("--spacing", type=float, help="segmenter pixel size in mm (default 1.5)")
    t.add_argument("--crop", type=int, help="segmenter window in pixels (default 96)")
    t.add_argument("--channels", type=int_list, help="UNet widths, e.g. 16,32,64,128,256 (default)")
    t.add_argument("--res-units", dest="res_units", type=int, help="residual units per UNet level (default 2)")
    t.add_argument(
        "--regions",
        action="store_true",
        help="predict nested regions (LV, myocardium, enhancement; sigmoid, Dice + BCE each) instead of "
        "four exclusive classes (softmax, the default; on EMIDEC the regions lost 0.014 of enhancement "
        "and 0.028 of cavity Dice, docs/results.md configuration 9)",
    )
    t.add_argument("--lge-threshold", type=float, help="LGE %% that splits the folds' strata and the AUC label (5.7)")
    t.add_argument("--nifti-slice-axis", type=int, choices=(0, 1, 2))
    t.add_argument("--nifti-basal-end", choices=("first", "last"))
    t.add_argument("--pixel-spacing", type=float, help="mm per pixel for inputs without one (PNG/TIFF)")
    t.add_argument("--no-augment", action="store_true", help="no augmentation (not recommended)")
    aug = t.add_mutually_exclusive_group()
    aug.add_argument(
        "--batch-augment",
        action="store_true",
        help="draw the augmentation geometry per batch with torch affine grids (the default since "
        "2026-11-27: ~25%% less CV time on a CPU, the same Dice and robustness on EMIDEC over two seeds)",
    )
    aug.add_argument(
        "--per-sample-augment",
        action="store_true",
        help="MONAI's per-sample affine instead (the default before 2026-11-27; what older runs used)",
    )
    t.add_argument(
        "--aug-intensity-scale",
        dest="aug_intensity_scale",
        type=float,
        help="training augmentation: intensities x(1 +- this), probability 0.6 (default 0.5)",
    )
    t.add_argument(
        "--aug-intensity-shift",
        dest="aug_intensity_shift",
        type=float,
        help="training augmentation: intensities +- this on the normalised [0, 1] scale, probability 0.6 (default 0.3)",
    )
    t.add_argument("--no-tta", action="store_true", help="no flip test-time augmentation")
    t.add_argument("--device", choices=["auto", "cpu", "cuda"])
    t.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        help="arithmetic precision (default auto: bf16 on cuda and on cpus with native bf16, else fp32)",
    )
    t.add_argument("--threads", dest="num_threads", type=int, help="torch threads per fold")
    t.add_argument(
        "--loader-workers",
        dest="loader_workers",
        type=int,
        help="processes per fold that make the augmented batches ahead of each step (default auto: none "
        "on a CPU; on a GPU, where the CPU-side augmentation bounds the step, the cores per fold at a "
        "time less one, at most 3)",
    )
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
    ap.add_argument("--run", required=True, help="the --out of `lgenet segment train`")
    ap.add_argument("--manifest", help="cohort CSV (patient_id, image; masks optional: Dice is then reported)")
    ap.add_argument("--out", help="output folder (masks/, overlays/, segmentation.csv, manifest.csv)")
    ap.add_argument("-o", "--output", help="with input paths: the per-input CSV (masks in <name>_seg/ beside it)")
    ap.add_argument(
        "--ids",
        type=lambda s: [v.strip() for v in s.split(",") if v.strip()],
        help="study-local ids for the input paths (default input_001...)",
    )
    ap.add_argument("--nifti-slice-axis", type=int, choices=(0, 1, 2))
    ap.add_argument("--nifti-basal-end", choices=("first", "last"))
    ap.add_argument("--pixel-spacing", type=float, help="mm per pixel for inputs without one (PNG/TIFF)")
    ap.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    ap.add_argument("-q", "--quiet", action="store_true")
    ap.add_argument("paths", nargs="*", help="DICOM series folders, NIfTI stacks (or 2-D images)")
    ap.set_defaults(func=cmd_segment_apply)
    return p
