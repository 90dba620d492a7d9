"""``lgenet model export`` / ``info`` / ``evaluate`` (wired in by :mod:`lgenet.cli`): model bundles (:mod:`lgenet.runs.bundle`)."""

from __future__ import annotations

import argparse

from lgenet.cli.options import csv_list
from lgenet.errors import ConfigError

__all__ = ["add_model_parser"]


def _cmd_export(a: argparse.Namespace) -> int:
    from lgenet.runs.bundle import export_bundle, read_metadata
    from lgenet.runs.paths import refuse_overwrite

    refuse_overwrite(a.out, [a.run], "--out", kind="file")
    path = export_bundle(a.run, a.out, name=a.name, tasks=a.task, model=a.model)
    lg = read_metadata(path)["lgenet"]
    if lg.get("kind") == "classifier":
        what = "; ".join(f"{t}: {d['model']}, {len(d['folds'])} fold models" for t, d in lg["tasks"].items())
    else:
        what = f"{len(lg['members'])} fold models"
    print(f"bundle written to {path} ({path.stat().st_size / 1e6:.1f} MB, {what})")
    print(f"see it with: lgenet model info {path}")
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    from lgenet.runs.bundle import bundle_info, fetch_from_hub

    path = fetch_from_hub(a.bundle) if a.bundle.startswith("hf://") else a.bundle
    print(bundle_info(path))
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from lgenet.runs.bundle import add_external, bundle_kind_of, external_summary, fetch_from_hub, open_bundle
    from lgenet.runs.paths import refuse_overwrite
    from lgenet.segment import SegApplyOptions, apply_segmentation

    src = fetch_from_hub(a.bundle) if a.bundle.startswith("hf://") else a.bundle
    refuse_overwrite(a.out, [src, a.manifest], "--out", kind="file")
    if bundle_kind_of(src) == "classifier":
        return _evaluate_classifier(a, src)
    if not a.work:
        raise ConfigError("lgenet model evaluate: a segmentation bundle needs --work DIR (where the masks go)")
    refuse_overwrite(a.work, [src, a.manifest], "--work")
    res = apply_segmentation(
        open_bundle(src, kind="segmentation"),
        SegApplyOptions(out=a.work, manifest=a.manifest, labels=a.labels, progress=not a.quiet, engine=a.engine),
    )
    if res.evaluation is None:
        raise ConfigError(f"--manifest {a.manifest}: no row has an expert mask (column mask); nothing to evaluate")
    path = add_external(src, a.out, label=a.label or f"{a.manifest}", evaluation=res.evaluation)
    print(external_summary(res.evaluation))
    print(f"bundle with this evaluation in its card: {path} (the segmentation in {a.work})")
    return 0


def _evaluate_classifier(a: argparse.Namespace, src) -> int:
    from lgenet.runs.bundle import add_external, open_bundle
    from lgenet.runs.bundle_card import classifier_external_summary
    from lgenet.workflows.predict import evaluate_manifest

    if a.labels:
        raise ConfigError("--labels names mask label values; a classifier bundle is evaluated on the manifest's labels")
    if a.work:
        from lgenet.runs.paths import refuse_overwrite

        refuse_overwrite(a.work, [src, a.manifest], "--work")
    run = open_bundle(src, kind="classifier")
    ev = evaluate_manifest(run, a.manifest, tasks=a.task, out=a.work)
    path = add_external(src, a.out, label=a.label or f"{a.manifest}", evaluation=ev)
    print(classifier_external_summary(ev))
    print(f"bundle with this evaluation in its card: {path}" + (f" (the predictions in {a.work})" if a.work else ""))
    return 0


def add_model_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "model", help="model bundles: hand a trained segmentation or classifier model on, with its card"
    )
    sub = p.add_subparsers(dest="model_command", metavar="ACTION")
    sub.required = True
    e = sub.add_parser("export", help="write a finished run as one bundle file (NAME.lgenet)")
    e.add_argument(
        "run",
        help="the --out of `lgenet segment train` or `segment finetune` (a segmentation bundle), or of `lgenet run` "
        "(a classifier bundle: each task's chosen model)",
    )
    e.add_argument("--out", required=True, help="the bundle file to write, NAME.lgenet")
    e.add_argument(
        "--task",
        type=csv_list,
        help="classifier runs: the task(s) to bundle, comma-separated (default: every task the run trained)",
    )
    e.add_argument(
        "--model",
        help="classifier runs: the ARCH/INIT to bundle, chosen in advance (default: each task's best by out-of-fold "
        "AUC, which the card says carries the optimism of that choice)",
    )
    e.add_argument("--name", help="the model's name in its card (default: the file's stem)")
    e.set_defaults(func=_cmd_export)
    i = sub.add_parser("info", help="a bundle's model card: training data and licence, metrics, failure modes")
    i.add_argument("bundle", help="NAME.lgenet, or hf://owner/repo[/file.lgenet]")
    i.set_defaults(func=_cmd_info)
    v = sub.add_parser(
        "evaluate",
        help="apply a bundle to a labelled cohort and write a new bundle whose card carries that external result",
    )
    v.add_argument("bundle", help="NAME.lgenet, or hf://owner/repo[/file.lgenet]")
    v.add_argument(
        "--manifest",
        required=True,
        help="a labelled cohort: expert masks (column mask) for a segmentation bundle; lge_percent and/or event "
        "for a classifier bundle",
    )
    v.add_argument("--out", required=True, help="the new bundle, NEW.lgenet (the input bundle is not changed)")
    v.add_argument(
        "--work",
        help="folder for the cohort's segmentation (segment apply's --out; needed for a segmentation bundle) or, "
        "for a classifier bundle, its predictions (optional)",
    )
    v.add_argument("--task", type=csv_list, help="classifier bundles: the task(s) to evaluate (default: all it holds)")
    v.add_argument(
        "--engine",
        choices=("auto", "torch", "onnx"),
        default="auto",
        help="segmentation bundles: as segment apply --engine (default auto: onnx when ONNX Runtime is installed)",
    )
    v.add_argument("--label", help="how the card names this cohort, e.g. 'centre B, 45 stacks, 2026' (no identifiers)")
    v.add_argument("--labels", help="label values of the manifest's masks (see segment apply --labels)")
    v.add_argument("-q", "--quiet", action="store_true")
    v.set_defaults(func=_cmd_evaluate)
    return p
