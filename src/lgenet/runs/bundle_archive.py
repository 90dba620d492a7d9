"""The bundle file itself (since 0.3.0): a zip archive whose every file is listed with its SHA-256, read back
checked. The two kinds of bundle (:mod:`lgenet.runs.bundle` for segmentation ensembles,
:mod:`lgenet.runs.bundle_classifier` for a classifier run's chosen models) share this format."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

from lgenet import __version__
from lgenet.errors import ConfigError, LgenetError
from lgenet.utils import atomic_path

__all__ = [
    "BUNDLE_FORMAT",
    "SUFFIX",
    "KINDS",
    "cache_root",
    "IMAGE_INPUT",
    "metadata_header",
    "sha256",
    "check_suffix",
    "write_archive",
    "read_archive",
    "verify_archive",
    "read_weights",
    "bundle_kind",
    "safetensors_metadata",
]

#: the bundle layout version this lgenet writes and reads; a bundle of a later format is refused
BUNDLE_FORMAT = 1
SUFFIX = ".lgenet"
#: what a bundle holds (``lgenet.kind`` of its metadata; a bundle without one is a segmentation bundle) and the
#: command that uses it
KINDS = {
    "segmentation": "lgenet segment apply --model",
    "classifier": "lgenet predict --model",
}


#: MONAI's ``network_data_format`` input of every lgenet bundle: one grey LGE magnitude image, any size and range
IMAGE_INPUT = {
    "image": {
        "type": "image",
        "format": "magnitude",
        "num_channels": 1,
        "spatial_shape": ["*", "*"],
        "dtype": "float32",
        "value_range": ["*", "*"],
        "is_patch_data": False,
        "channel_def": {"0": "image"},
    }
}


def metadata_header(name: str) -> dict:
    """The MONAI metadata fields every bundle opens with: name, version and changelog, the library versions."""
    import monai
    import numpy
    import torch

    return {
        "name": name,
        "version": "1.0.0",
        "changelog": {"1.0.0": f"exported by lgenet {__version__}"},
        "monai_version": monai.__version__,
        "pytorch_version": torch.__version__,
        "numpy_version": numpy.__version__,
        "required_packages_version": {"lgenet": __version__},
        "authors": "exported with lgenet",
        "copyright": "see LICENSE.txt",
    }


def cache_root() -> Path:
    """Where bundles are unpacked (and hub downloads kept): ``$LGENET_CACHE`` or ``~/.cache/lgenet``."""
    return Path(os.environ.get("LGENET_CACHE") or Path.home() / ".cache" / "lgenet")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_suffix(out: str | Path) -> Path:
    out = Path(out)
    if out.suffix != SUFFIX:
        raise ConfigError(f"--out {out}: a bundle's file name ends in {SUFFIX}")
    return out


def write_archive(out: Path, files: dict[str, bytes]) -> None:
    """``files`` and their ``checksums.sha256`` as one zip, written atomically (weights stored, the rest deflated)."""
    sums = "".join(f"{sha256(b)}  {n}\n" for n, b in sorted(files.items()))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as z:
        for n, b in sorted(files.items()):
            z.writestr(n, b, compress_type=zipfile.ZIP_STORED if n.endswith(".safetensors") else zipfile.ZIP_DEFLATED)
        z.writestr("checksums.sha256", sums)


def bundle_kind(meta: dict) -> str:
    return str((meta.get("lgenet") or {}).get("kind") or "segmentation")


def _weight_files(meta: dict) -> list[str]:
    lg = meta["lgenet"]
    if bundle_kind(meta) == "classifier":
        return [f"models/{t}/fold{k}.safetensors" for t, d in lg.get("tasks", {}).items() for k in d.get("folds", [])]
    return [f"models/fold{k}.safetensors" for k in lg.get("members", [])]


def _is_weights(name: str) -> bool:
    return name.endswith(".safetensors")


def verify_archive(path: Path) -> tuple[dict[str, bytes], str]:
    """Check every file of a bundle against its checksums, streaming (a classifier bundle at the seed's sizes is
    over a gigabyte): refused by name when one differs, is missing or was added, when the bundle's format or kind
    is newer than this lgenet reads, and when a listed weight file is absent. Returns the small files (all but the
    weights) and the digest of the checksum list, which names the archive's content."""
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if not n.endswith("/")]
            if "checksums.sha256" not in names or "configs/metadata.json" not in names:
                raise LgenetError(f"{path}: not an lgenet bundle (no checksums.sha256 or configs/metadata.json)")
            sums = z.read("checksums.sha256")
            listed = {}
            for line in sums.decode(errors="replace").splitlines():
                if line.strip():
                    digest, _, name = line.partition("  ")
                    listed[name.strip()] = digest.strip()
            present = set(names) - {"checksums.sha256"}
            missing = sorted(set(listed) - present)
            added = sorted(present - set(listed))
            small: dict[str, bytes] = {}
            changed = []
            for n in sorted(present & set(listed)):
                h = hashlib.sha256()
                with z.open(n) as fh:
                    if _is_weights(n):
                        while chunk := fh.read(1 << 23):
                            h.update(chunk)
                    else:
                        small[n] = fh.read()
                        h.update(small[n])
                if h.hexdigest() != listed[n]:
                    changed.append(n)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise LgenetError(f"{path}: not a readable lgenet bundle ({exc})") from None
    if missing or added or changed:
        parts = [
            f"{w}: {', '.join(v)}" for w, v in (("missing", missing), ("not listed", added), ("altered", changed)) if v
        ]
        raise LgenetError(
            f"{path}: the bundle fails its checksums ({'; '.join(parts)}); get an intact copy from its author"
        )
    try:
        meta = json.loads(small["configs/metadata.json"])
        fmt = int((meta.get("lgenet") or {}).get("format", 0))
    except (ValueError, TypeError, AttributeError) as exc:
        raise LgenetError(f"{path}: configs/metadata.json is not an lgenet bundle's metadata ({exc})") from None
    if fmt > BUNDLE_FORMAT or fmt < 1:
        raise LgenetError(
            f"{path}: bundle format {fmt}, written by lgenet {meta.get('required_packages_version', {}).get('lgenet')}; "
            f"this lgenet {__version__} reads format {BUNDLE_FORMAT}: upgrade lgenet"
        )
    if bundle_kind(meta) not in KINDS:
        raise LgenetError(
            f"{path}: a bundle of kind {bundle_kind(meta)!r}, which this lgenet {__version__} does not know "
            f"(it knows {', '.join(KINDS)}): upgrade lgenet"
        )
    for n in _weight_files(meta):
        if n not in listed:
            raise LgenetError(f"{path}: the bundle lists the fold model {n} but does not hold it")
    return small, sha256(sums)


def read_weights(path: Path, names: list[str]) -> dict[str, bytes]:
    """The weight files ``names`` of a bundle already checked with :func:`verify_archive`."""
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in names}


def read_archive(path: Path) -> dict[str, bytes]:
    """Every file of a bundle, checked (:func:`verify_archive`), weights included."""
    small, _ = verify_archive(path)
    with zipfile.ZipFile(path) as z:
        weights = [n for n in z.namelist() if _is_weights(n)]
    return small | read_weights(path, weights)


def safetensors_metadata(b: bytes) -> dict:
    """The ``__metadata__`` of a safetensors file's header (8-byte little-endian length, then JSON)."""
    n = int.from_bytes(b[:8], "little")
    return json.loads(b[8 : 8 + n]).get("__metadata__") or {}
