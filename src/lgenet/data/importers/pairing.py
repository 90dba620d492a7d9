"""Which image goes with which mask: by file name, by ``{id}`` patterns, or from a pairs CSV."""

from __future__ import annotations

import csv
import glob as _glob
import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from lgenet.data.importers.cases import CaseError, _strip_nii
from lgenet.errors import ConfigError, DataError

__all__ = ["find_nifti", "read_pairs_csv"]


def find_nifti(spec: str | Path | Sequence[str | Path], what: str = "images") -> list[Path]:
    """Files named by a folder (its ``*.nii``/``*.nii.gz``), a glob pattern, a file, or a list."""
    if isinstance(spec, (list, tuple)):
        return [Path(p) for p in spec]
    s = str(spec)
    p = Path(s)
    if p.is_dir():
        files = sorted(q for q in p.iterdir() if q.is_file() and _strip_nii(q.name) is not None)
        if not files:
            raise DataError(f"{what}: no .nii or .nii.gz file in folder {p}")
        return files
    if any(ch in s for ch in "*?["):
        files = sorted(Path(q) for q in _glob.glob(s, recursive=True) if Path(q).is_file())
        if not files:
            raise DataError(f"{what}: the pattern {s!r} matches no file")
        return files
    if p.is_file():
        return [p]
    raise DataError(f"{what}: {s} is neither a folder, a file nor a glob pattern that matches files")


def _pair(img_files: list[Path], mask_files: list[Path], case_ids: Mapping[str, str] | None):
    if case_ids is not None:
        if len(img_files) != len(mask_files):
            raise DataError(f"{len(img_files)} images but {len(mask_files)} masks")
        return [(case_ids.get(str(i), _strip_nii(i.name) or i.name), i, m) for i, m in zip(img_files, mask_files)]

    def key(p: Path) -> str:
        return _strip_nii(p.name) or p.name

    imgs: dict[str, Path] = {}
    for p in img_files:
        if key(p) in imgs:
            raise DataError(f"two images share case ID {key(p)!r}: {imgs[key(p)]} and {p}")
        imgs[key(p)] = p
    msks: dict[str, Path] = {}
    for p in mask_files:
        if key(p) in msks:
            raise DataError(f"two masks share case ID {key(p)!r}: {msks[key(p)]} and {p}")
        msks[key(p)] = p
    no_mask = sorted(set(imgs) - set(msks))
    if no_mask:
        raise CaseError(
            no_mask[0],
            f"image {imgs[no_mask[0]]} has no mask with the same name"
            + (f" ({len(no_mask)} images lack one: {no_mask[:6]})" if len(no_mask) > 1 else ""),
        )
    no_img = sorted(set(msks) - set(imgs))
    if no_img:
        raise CaseError(no_img[0], f"mask {msks[no_img[0]]} has no image with the same name")
    return [(k, imgs[k], msks[k]) for k in sorted(imgs)]


def _pattern_regex(pattern: str, option: str) -> re.Pattern:
    if pattern.count("{id}") != 1:
        raise ConfigError(
            f"{option} {pattern!r} must hold the placeholder {{id}} exactly once (it captures the "
            "case ID), e.g. '{id}_LGE.nii.gz'"
        )
    if "/" in pattern or "\\" in pattern:
        raise ConfigError(
            f"{option} {pattern!r} must match a file name, not a path; put the folder in --images/--masks"
        )
    head, tail = pattern.split("{id}")

    def tr(text: str) -> str:
        return "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)

    return re.compile(f"^{tr(head)}(?P<id>.+){tr(tail)}$")


def _pair_by_pattern(
    img_files: list[Path], mask_files: list[Path], image_pattern: str | None, mask_pattern: str | None
):
    """Pair by the ``{id}`` part of the file names; returns (pairs, ignored file names)."""
    opts = {"images": ("--image-pattern", image_pattern), "masks": ("--mask-pattern", mask_pattern)}
    found: dict[str, dict[str, Path]] = {}
    ignored: dict[str, list[str]] = {}
    for what, files in (("images", img_files), ("masks", mask_files)):
        option, pattern = opts[what]
        rx = _pattern_regex(pattern, option) if pattern else None
        by_id: dict[str, Path] = {}
        skip: list[str] = []
        for p in files:
            if rx is None:
                cid = _strip_nii(p.name)
            else:
                m = rx.match(p.name)
                cid = m.group("id") if m else None
            if cid is None:
                skip.append(str(p))
                continue
            if cid in by_id:
                raise DataError(f"two {what} share case ID {cid!r}: {by_id[cid]} and {p}; make {option} more specific")
            by_id[cid] = p
        if not by_id:
            eg = f", e.g. {Path(files[0]).name}" if files else ""
            raise DataError(
                f"{what}: no file matches {option} {pattern or '{id}.nii(.gz)'!r} ({len(files)} file(s) looked at{eg})"
            )
        found[what], ignored[what] = by_id, skip
    imgs, msks = found["images"], found["masks"]
    both = sorted({str(p) for p in imgs.values()} & {str(p) for p in msks.values()})
    if both:
        raise ConfigError(
            f"{both[0]} matches both --image-pattern {image_pattern!r} and --mask-pattern "
            f"{mask_pattern!r}; make the patterns more specific"
        )

    def expected(pattern: str | None, cid: str) -> str:
        return pattern.replace("{id}", cid) if pattern else f"{cid}.nii.gz or {cid}.nii"

    no_mask = sorted(set(imgs) - set(msks))
    if no_mask:
        c = no_mask[0]
        raise CaseError(
            c,
            f"image {imgs[c]} has no mask: no mask file is named {expected(mask_pattern, c)!r} "
            f"(--mask-pattern {mask_pattern or '{id}.nii(.gz)'!r})"
            + (f"; {len(no_mask)} images lack one: {no_mask[:6]}" if len(no_mask) > 1 else ""),
        )
    no_img = sorted(set(msks) - set(imgs))
    if no_img:
        c = no_img[0]
        raise CaseError(
            c,
            f"mask {msks[c]} has no image: no image file is named {expected(image_pattern, c)!r} "
            f"(--image-pattern {image_pattern or '{id}.nii(.gz)'!r})"
            + (f"; {len(no_img)} masks lack one: {no_img[:6]}" if len(no_img) > 1 else ""),
        )
    return [(k, imgs[k], msks[k]) for k in sorted(imgs)], ignored


def read_pairs_csv(path: str | Path) -> list[tuple[str, Path, Path]]:
    """Read a pairs CSV (columns ``case_id,image,mask``; other columns are ignored).

    Relative paths are relative to the CSV's folder. Returns ``(case_id, image, mask)`` in file
    order. Raises :class:`~lgenet.errors.DataError` naming the line for an empty cell, a repeated
    case ID or file, an ID with '/' or '\\', or a file that does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"pairs file {path} does not exist; give a CSV with columns case_id,image,mask "
            "(paths relative to the CSV's folder)"
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"pairs file {path} could not be read as UTF-8 text: {exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in ("case_id", "image", "mask") if c not in header]
    if missing:
        raise DataError(
            f"pairs file {path} lacks column(s) {missing}; its columns are {header}; expected case_id,image,mask"
        )
    base = path.resolve().parent
    out: list[tuple[str, Path, Path]] = []
    seen: dict[str, dict[str, int]] = {"case_id": {}, "image": {}, "mask": {}}
    for line, row in enumerate(reader, start=2):
        row = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        for col in ("case_id", "image", "mask"):
            if not row.get(col):
                raise DataError(
                    f"pairs file {path}, line {line}: empty {col!r}; every row needs case_id, image and mask"
                )
        cid = row["case_id"]
        if "/" in cid or "\\" in cid:
            raise DataError(f"pairs file {path}, line {line}: case_id {cid!r} holds '/' or '\\'; use a study-local ID")
        files = {}
        for col in ("image", "mask"):
            p = Path(row[col])
            p = p if p.is_absolute() else base / p
            if not p.is_file():
                raise DataError(
                    f"pairs file {path}, line {line} (case {cid}): {col} {row[col]} does not exist "
                    f"(relative paths are read from {base})"
                )
            files[col] = p
        for col, key in (
            ("case_id", cid),
            ("image", str(files["image"].resolve())),
            ("mask", str(files["mask"].resolve())),
        ):
            if key in seen[col]:
                raise DataError(
                    f"pairs file {path}, line {line}: {col} {row[col]} already appears on line "
                    f"{seen[col][key]}; each case, image and mask must appear once"
                )
            seen[col][key] = line
        out.append((cid, files["image"], files["mask"]))
    if not out:
        raise DataError(f"pairs file {path} has no rows")
    return out
