"""``lgenet view`` (wired in by :mod:`lgenet.cli`): the local page to check every mask (:mod:`lgenet.report.viewer`)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_view_parser"]


def _cmd_view(a: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from lgenet.report.viewer import build_viewer, serve
    from lgenet.runs.paths import refuse_overwrite

    out = Path(a.static) if a.static else Path(a.dir) / "view"
    if a.static:
        refuse_overwrite(out, [a.dir], "--static")  # never into (or around) the folder it reads
    n = 0
    for name in ("segmentation.csv", "seg_metrics.csv"):
        f = Path(a.dir) / name
        if f.is_file():
            n = max(0, sum(1 for _ in open(f, encoding="utf-8")) - 1)
            break
    with tqdm(total=n or None, desc="viewer", unit="patient", disable=None, leave=False) as bar:
        index = build_viewer(a.dir, out, on_patient=bar.update)
    print(f"viewer written to {index}")
    if a.static:
        return 0
    serve(out, port=a.port, open_browser=not a.no_browser)
    return 0


def add_view_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "view",
        help="check every mask in the browser: a sortable patient table and each patient's slices with the predicted "
        "and expert masks (served on this machine only)",
    )
    p.add_argument("dir", help="a `segment apply --manifest` output folder or a `segment train` run")
    p.add_argument("--static", help="write the viewer into this folder (opens from disk) and exit, without serving")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.set_defaults(func=_cmd_view)
    return p
