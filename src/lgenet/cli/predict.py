"""``lgenet predict``: fold-ensemble probabilities (and CAMs) for new images with a finished run."""

from __future__ import annotations

import argparse
from pathlib import Path

from lgenet.cli.options import csv_list
from lgenet.config import TASKS
from lgenet.errors import ConfigError


def cmd_predict(a: argparse.Namespace) -> int:
    from lgenet.workflows.predict import check_output_file, predict, predict_manifest, write_predictions

    if a.output:
        check_output_file(a.output, "-o/--output")
    model = a.model
    if model and (model.endswith(".lgenet") or model.startswith("hf://")):  # a classifier bundle (since 0.3.0)
        if a.run:
            raise ConfigError("lgenet predict: give --run RUN (with --model ARCH/INIT) or --model BUNDLE, not both")
        import json

        from lgenet.runs.bundle import open_bundle

        a.run = str(open_bundle(model, kind="classifier"))
        tasks = list(json.loads((Path(a.run) / "bundle.json").read_text())["lgenet"]["tasks"])
        if a.task is None and len(tasks) == 1:
            a.task = tasks[0]
        elif a.task is None:
            raise ConfigError(
                f"lgenet predict: the bundle {model} holds the tasks {', '.join(tasks)}; choose one (--task)"
            )
        elif a.task not in tasks:
            raise ConfigError(f"--task {a.task}: the bundle {model} holds the task(s) {', '.join(tasks)}; choose one")
        model = None  # the bundle holds one model per task
    if not a.run:
        raise ConfigError("lgenet predict: give --run RUN (the --out of `lgenet run`) or --model BUNDLE.lgenet")
    if a.task is None:
        raise ConfigError(f"lgenet predict: give --task ({', '.join(TASKS)})")
    if bool(a.manifest) == bool(a.paths):
        raise ConfigError("lgenet predict: give input images (PATH ...) or --manifest cohort.csv, one of the two")
    from lgenet.workflows.predict import PredictOptions

    opts = PredictOptions(
        model=model,
        slice=a.slice,
        cam_dir=a.cam,
        cam_method=a.cam_method,
        cam_layer=a.cam_layer,
        nifti_slice_axis=a.nifti_slice_axis,
        nifti_basal_end=a.nifti_basal_end,
        progress=not a.quiet,
    )
    if a.manifest:
        if a.ids:
            raise ConfigError("lgenet predict: --ids goes with PATH inputs; a --manifest brings its own patient_id")
        preds = predict_manifest(a.run, a.task, a.manifest, options=opts)
    else:
        preds = predict(a.run, a.task, a.paths, ids=list(a.ids) if a.ids else None, options=opts)
    if a.output:
        write_predictions(preds, a.output)
        print(f"predictions written to {a.output}")
    print(f"task {a.task}, model {preds[0].model}, fold-ensemble of {len(preds[0].fold_probs)} models")
    for p in preds:
        folds = " ".join(f"{v:.3f}" for v in p.fold_probs)
        print(
            f"{p.prob:.3f}  [{folds}]  {p.patient_id}  {p.input}"
            + (f"  -> {p.cam}" if p.cam else "")
            + ("  (!) see warnings" if p.notes else "")
        )
    if a.cam:
        print(f"fold-ensemble mean {a.cam_method} overlays written to {a.cam} (index: {Path(a.cam) / 'cams.csv'})")
    return 0


def add_predict_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "predict", help="fold-ensemble probabilities for new images with a finished run or a classifier bundle"
    )
    p.add_argument("--run", help="run directory of `lgenet run` (or give a bundle to --model)")
    p.add_argument("--task", choices=list(TASKS), help="the task (optional with a one-task bundle)")
    p.add_argument(
        "--model",
        help="with --run: the ARCH/INIT to use (default: the task's best by out-of-fold AUC); or, instead of --run, a "
        "classifier bundle NAME.lgenet (lgenet model export) or hf://owner/repo[/file.lgenet]",
    )
    p.add_argument("--slice", help="'basal' or a slice index counted apex -> base (default: the run's)")
    p.add_argument("--manifest", help="score every row of this manifest (patient_id, image, slice; labels unused)")
    p.add_argument("--ids", type=csv_list, help="comma-separated study-local ids, one per PATH (default input_001...)")
    p.add_argument(
        "--nifti-slice-axis",
        type=int,
        choices=(0, 1, 2),
        help="NIfTI inputs: array axis of the short-axis slices (default: the run's)",
    )
    p.add_argument(
        "--nifti-basal-end",
        choices=("first", "last"),
        help="NIfTI inputs: which end of the slice axis is the base (default: the run's)",
    )
    p.add_argument("--output", "-o", help="write predictions to a .csv or .json file")
    p.add_argument("--cam", metavar="DIR", help="also write each input's fold-ensemble mean CAM overlay (PNG) into DIR")
    p.add_argument(
        "--cam-method",
        default="gradcam",
        choices=["gradcam", "gradcam++", "hirescam"],
        help="CAM method for --cam (default gradcam)",
    )
    p.add_argument("--cam-layer", help="CAM layer module path for --cam (default: the backbone's last block)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("paths", nargs="*", help="DICOM files, DICOM series folders, NIfTI volumes or PNG/TIFF images")
    p.set_defaults(func=cmd_predict)
    return p
