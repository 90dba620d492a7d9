"""``lgenet report`` (wired in by :mod:`lgenet.cli`; imports the report builder only when it runs)."""

from __future__ import annotations

import argparse

__all__ = ["add_report_parser", "CAM_METHODS"]

#: the CAM methods of :mod:`lgenet.explain.cam` (kept here so that ``--help`` does not import torch;
#: tests/test_cli.py checks they agree)
CAM_METHODS = ("gradcam", "gradcam++", "hirescam")


def _cmd_report(a: argparse.Namespace) -> int:
    from pathlib import Path

    from lgenet.report import ReportOptions, write_report

    d = Path(a.run_dir)
    if (d / "segmentation.csv").is_file() and (d / "apply.json").is_file():  # a segment apply output (since 0.3.0)
        from lgenet.report.patient import write_patient_reports

        files = write_patient_reports(d)
        print(f"patient reports: {d / 'reports'} ({len(files) // 2} patients, <ID>.html and <ID>.pdf)")
        return 0

    opts = ReportOptions(
        manifest=a.manifest,
        cam_method=a.cam_method,
        cam_layer=a.cam_layer,
        cam_target=a.cam_target,
        n_examples=a.examples,
        max_rho=a.max_rho,
        cams=not a.no_cams,
        refresh_cams=a.refresh_cams,
        sanity_methods=CAM_METHODS
        if a.sanity_methods is None
        else tuple(m.strip() for m in a.sanity_methods.split(",") if m.strip()),
    )
    path = write_report(a.run_dir, opts)
    print(f"report  : {path}")
    print(f"figure 1: {path.parent / 'figure1.png'} (and figure1.pdf)")
    return 0


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``lgenet report`` on the CLI's subparsers."""
    p = subparsers.add_parser(
        "report",
        help="write report.html and figure1.png/pdf for a finished run (never retrains)",
        description="Self-contained HTML report of a finished run: cohort, protocol, metrics with CIs, ROC, AUC "
        "bars, calibration, confusion matrices, out-of-fold CAM gallery with sanity checks, "
        "environment. CAMs are cached in RUN_DIR/cams, so a second report is fast.",
    )
    p.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="the --out directory of `lgenet run` (or of `segment apply --manifest`: its per-patient reports)",
    )
    p.add_argument("--manifest", help="cohort CSV, when the run's manifest has moved")
    p.add_argument(
        "--cam-method",
        default="auto",
        choices=["auto", *CAM_METHODS],
        help="CAM method of the gallery and Figure 1 (default auto: per task, the first of "
        + ", ".join(CAM_METHODS)
        + " that passes both sanity checks, else gradcam)",
    )
    p.add_argument("--cam-layer", help="module path of the CAM layer, e.g. backbone.layer3 (default: last block)")
    p.add_argument(
        "--cam-target",
        default="predicted",
        choices=["predicted", "positive"],
        help="explain the predicted class (default) or always the positive class",
    )
    p.add_argument("--sanity-methods", help="comma-separated CAM methods to sanity-check (default: all three)")
    p.add_argument("--examples", type=int, default=3, help="gallery cases per category TP/FN/TN/FP (default 3)")
    p.add_argument(
        "--max-rho",
        type=float,
        default=0.5,
        help="model-randomisation check: a CAM method passes when the median Spearman rho between "
        "trained- and random-model maps is below this (default 0.5)",
    )
    p.add_argument("--no-cams", action="store_true", help="metrics-only report")
    p.add_argument("--refresh-cams", action="store_true", help="recompute the cached CAMs")
    p.set_defaults(func=_cmd_report)
    return p
