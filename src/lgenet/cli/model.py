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
    return p
