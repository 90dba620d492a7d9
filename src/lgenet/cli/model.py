"""``lgenet model export`` / ``info`` (wired in by :mod:`lgenet.cli`): model bundles (:mod:`lgenet.runs.bundle`)."""

from __future__ import annotations

import argparse

__all__ = ["add_model_parser"]


def _cmd_export(a: argparse.Namespace) -> int:
    from lgenet.runs.bundle import export_bundle, read_metadata
    from lgenet.runs.paths import refuse_overwrite

    refuse_overwrite(a.out, [a.run], "--out", kind="file")
    path = export_bundle(a.run, a.out, name=a.name)
    meta = read_metadata(path)
    print(
        f"bundle written to {path} ({path.stat().st_size / 1e6:.1f} MB, {len(meta['lgenet']['members'])} fold models)"
    )
    print(f"see it with: lgenet model info {path}")
    return 0


def _cmd_info(a: argparse.Namespace) -> int:
    from lgenet.runs.bundle import bundle_info, fetch_from_hub

    path = fetch_from_hub(a.bundle) if a.bundle.startswith("hf://") else a.bundle
    print(bundle_info(path))
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from lgenet.errors import ConfigError
    from lgenet.runs.bundle import add_external, external_summary, fetch_from_hub, open_bundle
    from lgenet.runs.paths import refuse_overwrite
    from lgenet.segment import SegApplyOptions, apply_segmentation

    src = fetch_from_hub(a.bundle) if a.bundle.startswith("hf://") else a.bundle
    refuse_overwrite(a.out, [src, a.manifest], "--out", kind="file")
    refuse_overwrite(a.work, [src, a.manifest], "--work")
    res = apply_segmentation(
        open_bundle(src), SegApplyOptions(out=a.work, manifest=a.manifest, labels=a.labels, progress=not a.quiet)
    )
    if res.evaluation is None:
        raise ConfigError(f"--manifest {a.manifest}: no row has an expert mask (column mask); nothing to evaluate")
    path = add_external(src, a.out, label=a.label or f"{a.manifest}", evaluation=res.evaluation)
    print(external_summary(res.evaluation))
    print(f"bundle with this evaluation in its card: {path} (the segmentation in {a.work})")
    return 0


def add_model_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("model", help="model bundles: hand a trained segmentation model on, with its card")
    sub = p.add_subparsers(dest="model_command", metavar="ACTION")
    sub.required = True
    e = sub.add_parser("export", help="write a finished segmentation run as one bundle file (NAME.lgenet)")
    e.add_argument("run", help="the --out of `lgenet segment train` (or `segment finetune`)")
    e.add_argument("--out", required=True, help="the bundle file to write, NAME.lgenet")
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
    v.add_argument("--manifest", required=True, help="a cohort with expert masks (column mask)")
    v.add_argument("--out", required=True, help="the new bundle, NEW.lgenet (the input bundle is not changed)")
    v.add_argument("--work", required=True, help="folder for the segmentation of the cohort (segment apply's --out)")
    v.add_argument("--label", help="how the card names this cohort, e.g. 'centre B, 45 stacks, 2026' (no identifiers)")
    v.add_argument("--labels", help="label values of the manifest's masks (see segment apply --labels)")
    v.add_argument("-q", "--quiet", action="store_true")
    v.set_defaults(func=_cmd_evaluate)
    return p
