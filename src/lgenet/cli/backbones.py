"""``lgenet backbones``: the registered backbones."""

from __future__ import annotations

import argparse


def cmd_backbones(a: argparse.Namespace) -> int:
    from lgenet.models import get_spec, list_backbones

    print(f"{'name':<14}{'input':>7}{'features':>10}  {'CAM layer':<12} description")
    for name in list_backbones():
        s = get_spec(name)
        print(f"{name:<14}{s.input_size:>7}{s.num_features:>10}  {s.target_layer:<12} {s.description}")
    return 0


def add_backbones_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("backbones", help="list the registered backbones")
    p.set_defaults(func=cmd_backbones)
    return p
