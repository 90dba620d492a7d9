"""Where the files beside a manifest lie: its import sidecar, a quantified manifest and the latter's sidecar."""

from __future__ import annotations

from pathlib import Path

__all__ = ["import_sidecar", "quantified_manifest"]


def import_sidecar(manifest: str | Path) -> Path:
    """The sidecar of a manifest: ``<stem>.import.json`` beside it (written by ``lgenet import``, read
    by ``lgenet quantify`` and ``lgenet segment``)."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.stem + ".import.json")


def quantified_manifest(manifest: str | Path, out_dir: str | Path) -> Path:
    """The manifest ``lgenet quantify --manifest`` writes: ``<out_dir>/<stem>.quantified.csv``."""
    return Path(out_dir) / f"{Path(manifest).stem}.quantified.csv"
