"""Command-line interface: a thin layer over the library API.

``lgenet demo`` · ``lgenet synth`` · ``lgenet run`` · ``lgenet predict`` · ``lgenet backbones``
· ``weights`` · ``import`` · ``quantify`` · ``report``. Every user error is
printed as one clear message (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .config import INITS, TASKS, RunConfig, load_config
from .demo import DEMO_RUN
from .errors import ConfigError, LgenetError

__all__ = ["main", "build_parser", "parse_weights_args"]

log = logging.getLogger("lgenet")


# ------------------------------------------------------------------------------------------- helpers
def _csv_list(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def parse_weights_args(specs: Sequence[str] | None, archs: Sequence[str], inits: Sequence[str]) -> dict:
    """Turn ``--weights-file`` values into ``{arch: {init: path}}``.

    Forms: ``PATH`` (only when the run has one architecture and one pretrained init),
    ``ARCH=PATH`` (the run's one pretrained init), ``ARCH:INIT=PATH`` (explicit).
    """
    out: dict[str, dict[str, str]] = {}
    pretrained = [i for i in inits if i != "random"]
    for spec in specs or []:
        if "=" in spec and not Path(spec).exists():
            left, path = spec.split("=", 1)
            if ":" in left:
                arch, init = left.split(":", 1)
            else:
                arch = left
                if len(pretrained) != 1:
                    raise ConfigError(
                        f"--weights-file {spec!r}: the run has inits {list(inits)}; say which one the file is for "
                        f"with ARCH:INIT=PATH, e.g. {arch}:radimagenet={path}"
                    )
                init = pretrained[0]
        else:
            path = spec
            if len(archs) != 1 or len(pretrained) != 1:
                raise ConfigError(
                    f"--weights-file {spec!r}: with archs {list(archs)} and inits {list(inits)} a bare path is "
                    "ambiguous; use ARCH:INIT=PATH (e.g. resnet50:radimagenet=RadImageNet-ResNet50_notop.h5), "
                    "once per file"
                )
            arch, init = archs[0], pretrained[0]
        if arch not in archs:
            raise ConfigError(
                f"--weights-file {spec!r}: architecture {arch!r} is not in this run's archs {list(archs)}"
            )
        if init not in ("imagenet", "radimagenet"):
            raise ConfigError(f"--weights-file {spec!r}: init must be 'imagenet' or 'radimagenet', got {init!r}")
        out.setdefault(arch, {})[init] = path
    return out


#: what ``lgenet demo`` changes from the seed protocol (see :mod:`lgenet.demo`)
DEMO_DEFAULTS = DEMO_RUN
#: RunConfig's defaults (the seed study), quoted in ``lgenet run --help``
_SEED_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig) if f.default is not dataclasses.MISSING}


def _show(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(str(x) for x in v)
    return f"{v:g}" if isinstance(v, float) else str(v)


def _help(text: str, name: str | None, demo: bool, *, seed: str | None = None) -> str:
    """``text`` plus the option's default: the demo's own where it has one (under ``lgenet demo``),
    else the seed study's (``seed`` words it when the value alone would not say what it means)."""
    if demo and name in DEMO_DEFAULTS:
        note = f"demo default: {_show(DEMO_DEFAULTS[name])}"
    elif seed is not None:
        note = f"default: {seed}"
    elif name is not None and _SEED_DEFAULTS.get(name) is not None:
        note = f"default: {_show(_SEED_DEFAULTS[name])}"
    else:
        return text.replace("%", "%%")  # argparse %-formats help strings
    return f"{text} ({note})".replace("%", "%%")


def _add_run_options(p: argparse.ArgumentParser, *, demo: bool = False) -> None:
    # the demo runs a smaller grid than the seed study: its group title and help say so, option by option
    title = (
        "protocol (defaults: the demo's own where marked 'demo default', else the seed study's)"
        if demo
        else "protocol (defaults: the seed study)"
    )
    g = p.add_argument_group(title)

    def h(text: str, name: str | None = None, **kw: Any) -> str:
        return _help(text, name, demo, **kw)

    g.add_argument("--config", help="YAML file of RunConfig parameters (command-line options override it)")
    g.add_argument("--tasks", type=_csv_list, help=h(f"comma-separated tasks among {list(TASKS)}", "tasks"))
    g.add_argument(
        "--archs",
        "--arch",
        dest="archs",
        type=_csv_list,
        help=h("comma-separated backbones (see `lgenet backbones`)", "archs"),
    )
    g.add_argument(
        "--inits", "--init", dest="inits", type=_csv_list, help=h(f"comma-separated inits among {list(INITS)}", "inits")
    )
    g.add_argument(
        "--families",
        type=_csv_list,
        help=h(
            "model families: classifier (the seed CNNs), burden (the predicted LGE burden of "
            "--segmentation-run as the score), roi (a CNN on the LV-centred window) and stack "
            "(every slice's window, attention-pooled); the last three need --segmentation-run",
            "families",
        ),
    )
    g.add_argument(
        "--segmentation-run",
        help="a `lgenet segment train` (or `segment apply`) output on this cohort"
        + (" (demo default: trained on the synthetic cohort into DIR/seg, see lgenet.demo)" if demo else ""),
    )
    g.add_argument(
        "--covariates",
        type=_csv_list,
        help="clinical covariates (manifest columns) of the outcome models (default: the presentation "
        "covariates present, minus those that leak a task's label)",
    )
    g.add_argument(
        "--no-outcomes",
        dest="outcomes",
        action="store_false",
        default=None,
        help="skip the covariates / image / fusion outcome models after the grid (default: fit them)",
    )
    g.add_argument(
        "--weights-file",
        action="append",
        metavar="[ARCH[:INIT]=]PATH",
        help="local pretrained weights; repeat for several (see docs)",
    )
    g.add_argument("--epochs", type=int, help=h("training epochs of every fit", "epochs"))
    g.add_argument("--batch-size", type=int, help=h("mini-batch size", "batch_size"))
    g.add_argument("--lr", type=float, help=h("learning rate (Adam)", "lr"))
    g.add_argument("--folds", type=int, help=h("cross-validation folds", "folds"))
    g.add_argument(
        "--image-size",
        type=int,
        help=h("input size in px", "image_size", seed="the backbone's own, e.g. 224 for ResNet50, 299 for InceptionV3"),
    )
    g.add_argument(
        "--head",
        choices=["flatten", "gap"],
        help=h("classification head: flatten (Flatten, Dense, ReLU, Dropout) or gap (global average pooling)", "head"),
    )
    g.add_argument("--lge-threshold", type=float, help=h("LGE % above which task 'lge' is positive", "lge_threshold"))
    g.add_argument(
        "--augment",
        action="store_true",
        default=None,
        help=h("light augmentation", "augment", seed="off, as in the seed"),
    )
    g.add_argument(
        "--seed",
        type=int,
        help=h("random seed of the folds and the fits" + (" (and of the synthetic cohort)" if demo else ""), "seed"),
    )
    g.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        help=h("where to train", "device", seed="auto: cuda when available, else cpu"),
    )
    g.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        help=h("arithmetic precision", "precision", seed="auto: bf16 on cuda and on cpus with native bf16, else fp32"),
    )
    g.add_argument(
        "--threads",
        dest="num_threads",
        type=int,
        help=h(
            "torch CPU threads per fit",
            "num_threads",
            seed="the cores not busy with other jobs, shared among --workers",
        ),
    )
    g.add_argument(
        "--ci-method", choices=["delong", "bootstrap"], help=h("method of the AUC confidence intervals", "ci_method")
    )
    g.add_argument(
        "--executor",
        choices=["local", "process", "ray"],
        default="process" if demo else "local",
        help="who runs the fits: one after another in this process (local), --workers at a "
        "time in worker processes (process), or as Ray tasks on a local Ray or the cluster at "
        "--ray-address (ray; pip install 'lgenet[ray]'; across machines the run directory and "
        "images must be on a shared file system) " + ("(demo default: process)" if demo else "(default: local)"),
    )
    g.add_argument(
        "--workers",
        type=int,
        default=None if demo else 1,
        help="fits at a time with --executor process "
        + (
            "(demo default: 2 on a machine with 2 or more cores, each fit with one torch thread)"
            if demo
            else "(default 1)"
        ),
    )
    g.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="with --executor ray: the cluster to join, e.g. 10.0.0.5:6379 (default: $RAY_ADDRESS, "
        "else a local Ray started for this run)",
    )
    g.add_argument(
        "--fits-per-gpu",
        type=int,
        default=1,
        help="with --executor ray on CUDA: fits sharing one GPU, each asking 1/N of it (default 1)",
    )
    g.add_argument(
        "--keep-models",
        choices=["best", "all", "none"],
        default="none" if demo else "best",
        help="fold models kept on disk: each task's best model's (best), every model's (all) or none once "
        "the report is written (none) "
        + ("(demo default: none, to keep the demo small; `lgenet run` keeps the best)" if demo else "(default: best)"),
    )
    g.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="skip report.html at the end (write it later with `lgenet report RUN_DIR`)",
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _yaml_keys(path: str | None) -> set[str]:
    """The parameters a --config file sets (an unreadable file is left to load_config's clear error)."""
    if not path:
        return set()
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return set()
    return set(data) if isinstance(data, dict) else set()


def _config_from_args(a: argparse.Namespace, **defaults):
    over = {
        k: getattr(a, k, None)
        for k in (
            "tasks",
            "archs",
            "inits",
            "epochs",
            "batch_size",
            "lr",
            "folds",
            "image_size",
            "head",
            "lge_threshold",
            "augment",
            "seed",
            "device",
            "precision",
            "num_threads",
            "ci_method",
            "families",
            "segmentation_run",
            "covariates",
            "outcomes",
        )
    }
    in_yaml = _yaml_keys(a.config)
    for k, v in defaults.items():  # a command's own defaults (the demo's) yield to the command line and the YAML
        if over.get(k) is None and k not in in_yaml:
            over[k] = v
    over["manifest"] = getattr(a, "manifest", None) or defaults.get("manifest")
    over["out"] = getattr(a, "out", None) or defaults.get("out")
    cfg = load_config(a.config, **over)
    if a.weights_file:
        cfg = cfg.replace(weights=parse_weights_args(a.weights_file, cfg.archs, cfg.inits))
    return cfg


# ------------------------------------------------------------------------------------------- commands
def cmd_backbones(a: argparse.Namespace) -> int:
    from .models import get_spec, list_backbones

    print(f"{'name':<14}{'input':>7}{'features':>10}  {'CAM layer':<12} description")
    for name in list_backbones():
        s = get_spec(name)
        print(f"{name:<14}{s.input_size:>7}{s.num_features:>10}  {s.target_layer:<12} {s.description}")
    return 0


def cmd_synth(a: argparse.Namespace) -> int:
    from .data.synth import make_cohort

    manifest = make_cohort(
        a.out,
        n_patients=a.n_patients,
        image_size=a.image_size,
        seed=a.seed,
        progress=not a.quiet,
        overwrite=a.overwrite,
    )
    print(f"synthetic cohort written: {manifest}")
    return 0


def _print_table(res) -> None:
    """The metrics table, printed as soon as it exists (the outcomes and the report come after)."""
    print()
    print(res.table, flush=True)
    print()
    res.table_printed = True


def _print_result(res) -> None:
    if not getattr(res, "table_printed", False):
        _print_table(res)
    print(f"run directory : {res.out_dir}")
    print(f"metrics       : {res.out_dir / 'metrics.csv'} (and metrics.json)")
    print(f"predictions   : {res.out_dir / 'oof_predictions.csv'}")
    for f in res.figures:
        print(f"figure        : {f}")
    report = res.out_dir / "report.html"
    if report.exists():
        print(f"report        : {report}")
    print(f"fits run: {res.fits_run}, resumed (already done): {res.fits_skipped}")


def _exec_args(a: argparse.Namespace) -> dict:
    import os

    workers = a.workers if a.workers is not None else min(2, os.cpu_count() or 1)  # (the demo's default)
    return dict(executor=a.executor, workers=workers, ray_address=a.ray_address)


def cmd_run(a: argparse.Namespace) -> int:
    from .pipeline import run_experiment

    cfg = _config_from_args(a)
    if cfg.manifest is None:
        raise ConfigError("lgenet run needs --manifest cohort.csv (or 'manifest:' in --config)")
    res = run_experiment(
        cfg,
        progress=not a.quiet,
        keep_models=a.keep_models,
        report=a.report,
        on_metrics=_print_table,
        fits_per_gpu=a.fits_per_gpu,
        **_exec_args(a),
    )
    _print_result(res)
    return 0


def cmd_demo(a: argparse.Namespace) -> int:
    from .data.synth import make_cohort
    from .demo import demo_segmentation
    from .pipeline import run_experiment

    root = Path(a.dir)
    cohort_dir = root / "cohort"
    manifest = cohort_dir / "manifest.csv"
    t0 = time.time()
    if manifest.exists():
        print(f"using the synthetic cohort already in {cohort_dir}")
    else:
        make_cohort(cohort_dir, n_patients=a.n_patients, image_size=128, seed=a.seed or 0, progress=not a.quiet)
        print(f"synthetic cohort ({a.n_patients} patients) written to {cohort_dir}")
    a.manifest, a.out = str(manifest), str(root / "run")
    seg_dir = root / "seg"
    cfg = _config_from_args(a, **DEMO_DEFAULTS, segmentation_run=str(seg_dir))
    uses_seg = bool({"burden", "roi", "stack"} & set(cfg.families))
    if uses_seg and cfg.segmentation_run == str(seg_dir):  # not given on the command line or in --config
        print(f"segmentation of the cohort (the headline model's burden, out of fold) -> {seg_dir}")
        seg = demo_segmentation(
            manifest,
            seg_dir,
            progress=not a.quiet,
            seed=cfg.seed,
            folds=cfg.folds,
            device=cfg.device,
            precision=cfg.precision,
            num_threads=cfg.num_threads,
            lge_threshold=cfg.lge_threshold,
            **_exec_args(a),
        )
        if not a.quiet:
            print(seg.table)
    res = run_experiment(
        cfg,
        progress=not a.quiet,
        keep_models=a.keep_models,
        report=a.report,
        on_metrics=_print_table,
        fits_per_gpu=a.fits_per_gpu,
        **_exec_args(a),
    )
    _print_result(res)
    print(f"demo finished in {time.time() - t0:.0f} s.")
    if uses_seg:
        print(
            "Predicted LGE % (the headline burden model's score) for new images:\n"
            f"  lgenet segment apply --run {cfg.segmentation_run} {cohort_dir / 'dicom' / 'SYN001'} -o seg.csv"
        )
    if a.keep_models != "none":
        print(
            f"Apply the CNN fold models to new images with:\n"
            f"  lgenet predict --run {res.out_dir} --task lge {cohort_dir / 'dicom' / 'SYN001'}"
        )
    return 0


def cmd_predict(a: argparse.Namespace) -> int:
    from .predict import check_output_file, predict, predict_manifest, write_predictions

    if a.output:
        check_output_file(a.output, "-o/--output")
    if bool(a.manifest) == bool(a.paths):
        raise ConfigError("lgenet predict: give input images (PATH ...) or --manifest cohort.csv, one of the two")
    kw = dict(
        model=a.model,
        slice=a.slice,
        cam_dir=a.cam,
        cam_method=a.cam_method,
        cam_layer=a.cam_layer,
        nifti_slice_axis=a.nifti_slice_axis,
        nifti_basal_end=a.nifti_basal_end,
    )
    if a.manifest:
        if a.ids:
            raise ConfigError("lgenet predict: --ids goes with PATH inputs; a --manifest brings its own patient_id")
        preds = predict_manifest(a.run, a.task, a.manifest, **kw)
    else:
        preds = predict(a.run, a.task, a.paths, ids=list(a.ids) if a.ids else None, **kw)
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


# ------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lgenet",
        description="Deep learning on LGE cardiac MRI: the Azoulay et al. protocol and beyond.",
    )
    parser.add_argument("--version", action="version", version=f"lgenet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log INFO messages to the terminal")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("backbones", help="list the registered backbones")
    p.set_defaults(func=cmd_backbones)

    p = sub.add_parser("synth", help="write a synthetic LGE DICOM cohort with a manifest")
    p.add_argument("--out", required=True, help="empty folder to write into")
    p.add_argument("--n-patients", type=int, default=116)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("demo", help="synthetic cohort + a small grid run (minutes on a laptop CPU)")
    p.add_argument("--dir", default="lgenet-demo", help="where the cohort and run go (default ./lgenet-demo)")
    p.add_argument("--n-patients", type=int, default=116, help="patients of the synthetic cohort (default 116)")
    _add_run_options(p, demo=True)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="the cross-validated grid on a cohort manifest")
    p.add_argument("--manifest", help="cohort CSV (see README: Manifest)")
    p.add_argument("--out", help="run directory (a rerun resumes it)")
    _add_run_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("predict", help="fold-ensemble probabilities for new images with a finished run")
    p.add_argument("--run", required=True, help="run directory of `lgenet run`")
    p.add_argument("--task", required=True, choices=list(TASKS))
    p.add_argument("--model", help="ARCH/INIT to use (default: the task's best by out-of-fold AUC)")
    p.add_argument("--slice", help="'basal' or a slice index counted apex -> base (default: the run's)")
    p.add_argument("--manifest", help="score every row of this manifest (patient_id, image, slice; labels unused)")
    p.add_argument("--ids", type=_csv_list, help="comma-separated study-local ids, one per PATH (default input_001...)")
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
    p.add_argument("paths", nargs="*", help="DICOM files, DICOM series folders, NIfTI volumes or PNG/TIFF images")
    p.set_defaults(func=cmd_predict)

    from .import_cli import add_import_parser, add_quantify_parser
    from .outcomes_cli import add_outcomes_parser
    from .report_cli import add_report_parser
    from .segment_cli import add_segment_parser
    from .weights_cli import add_weights_parser

    for add in (
        add_weights_parser,
        add_import_parser,
        add_quantify_parser,
        add_segment_parser,
        add_report_parser,
        add_outcomes_parser,
    ):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.setLevel(logging.INFO if args.verbose else logging.WARNING)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        return args.func(args)
    except LgenetError as exc:
        print(f"lgenet {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file system refused: say which file and why, in one line
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"lgenet {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume finished fits", file=sys.stderr)
        return 130
    finally:
        log.removeHandler(handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
