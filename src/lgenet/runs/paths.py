"""Output folders: checked before anything is written."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lgenet.errors import ConfigError

__all__ = ["ensure_writable_dir", "refuse_overwrite"]


def ensure_writable_dir(path: str | Path, what: str = "--out") -> Path:
    """``path`` as a directory that exists or can be created and written; a clear error otherwise."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{what} {p} is an existing file, not a directory; choose a folder path")
    probe_dir = p
    while not probe_dir.exists():
        probe_dir = probe_dir.parent
    if not probe_dir.is_dir():
        raise ConfigError(f"{what} {p} cannot be created: {probe_dir} is a file")
    if not os.access(probe_dir, os.W_OK | os.X_OK):
        raise ConfigError(f"{what} {p} cannot be created or written: no write permission in {probe_dir}")
    return p


def _resolved(p: str | Path) -> Path:
    return Path(os.path.abspath(Path(p).expanduser())).resolve()


def refuse_overwrite(
    out: str | Path, inputs: Iterable[str | Path | None], what: str = "--out", *, kind: str = "folder"
) -> Path:
    """Refuse an output that would write over something the command reads (since 0.2.0); ``out`` resolved.

    ``inputs``: every file and folder the command reads (``None`` entries are skipped): its manifest, images,
    masks, the run folder it reads from. ``kind="folder"``: ``out`` is a folder the command writes into; it is
    refused when it is an input, holds an input, or lies inside an input folder. ``kind="file"``: ``out`` is one
    file; refused when it is an input or lies inside an input folder. Checked before anything is written."""
    if kind not in ("folder", "file"):
        raise ValueError(f"kind must be 'folder' or 'file', got {kind!r}")
    o = _resolved(out)
    for given in inputs:
        if given is None or str(given) == "":
            continue
        p = _resolved(given)
        if o == p:
            raise ConfigError(
                f"{what} {out} is an input of this command ({given}); writing there would overwrite it: "
                "choose a new output path"
            )
        if kind == "folder" and o in p.parents:
            raise ConfigError(
                f"{what} {out} holds an input of this command ({given}); its outputs would overwrite or mix with "
                "the inputs: choose a new folder outside them"
            )
        if p.is_dir() and p in o.parents:
            raise ConfigError(
                f"{what} {out} lies inside the input folder {given}, which this command reads: choose an output "
                "outside it"
            )
    return o
