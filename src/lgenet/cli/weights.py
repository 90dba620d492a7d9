"""``lgenet weights inspect FILE`` and ``lgenet weights convert FILE --arch A --out F.safetensors``
(the library: :mod:`lgenet.models.inspect`)."""

from __future__ import annotations

import argparse
import json
import sys

#: the choices of --arch: lgenet.models.inspect.ARCHS, written out so that --help loads no torch (a test checks)
ARCHS = ("resnet50", "inception_v3")

__all__ = ["add_weights_parser"]


def _cmd_inspect(args: argparse.Namespace) -> int:
    from lgenet.models.inspect import format_inspect, inspect_weights

    rep = inspect_weights(args.file)
    print(json.dumps(rep, indent=2) if args.json else format_inspect(rep))
    return 0 if rep["loadable"] else 1


def _cmd_convert(args: argparse.Namespace) -> int:
    from lgenet.models.inspect import convert_weights, inspect_weights

    out = convert_weights(args.file, args.arch, args.out, init=args.init)
    rep = inspect_weights(out)
    print(
        f"wrote {out} ({rep['size_bytes']:,} bytes, sha256 {rep['sha256']}); layout "
        f"{rep['layout']}, input norm {rep['norm']}. Use it with --weights-file {out}",
        file=sys.stdout,
    )
    return 0


def add_weights_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``weights inspect`` and ``weights convert`` on an argparse ``subparsers`` object.

    Each leaf parser sets ``func`` (``args.func(args) -> int``, the exit status).
    """
    p = subparsers.add_parser(
        "weights",
        help="inspect or convert pretrained weights files (Keras .h5, RadImageNet .pt, torch, safetensors)",
        description="Inspect or convert pretrained weights files.",
    )
    sub = p.add_subparsers(dest="weights_command", metavar="{inspect,convert}")
    sub.required = True
    pi = sub.add_parser(
        "inspect", help="format, architecture, tensor count, matched/unmatched, SHA-256 of a weights file"
    )
    pi.add_argument("file", help="weights file (.h5/.hdf5/.keras, .pt/.pth, .safetensors)")
    pi.add_argument("--json", action="store_true", help="print the report as JSON")
    pi.set_defaults(func=_cmd_inspect)
    pc = sub.add_parser("convert", help="write a cached PyTorch copy (.safetensors) that loads fast and identically")
    pc.add_argument("file", help="weights file to convert")
    pc.add_argument("--arch", required=True, choices=list(ARCHS), help="backbone the weights are for")
    pc.add_argument("--out", required=True, help="output file, ending in .safetensors")
    pc.add_argument(
        "--init",
        choices=["imagenet", "radimagenet"],
        default=None,
        help="for a plain torchvision/timm state dict: which input convention to record (Keras and RadImageNet files fix it)",
    )
    pc.set_defaults(func=_cmd_convert)
    return p
