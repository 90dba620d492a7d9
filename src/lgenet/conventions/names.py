"""File names derived from study-local patient IDs."""

from __future__ import annotations

from collections.abc import Iterable

from lgenet.errors import DataError

__all__ = ["check_unique_names", "safe_name"]


def safe_name(text: str) -> str:
    """A file-name-safe form of a study-local id (letters, digits, '.', '_', '-')."""
    out = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "_" for c in str(text))
    return out.strip(".") or "_"


def check_unique_names(ids: Iterable[str], what: str = "the manifest") -> dict[str, str]:
    """``{id: safe_name(id)}`` of distinct ``ids``; a :class:`DataError` naming both IDs when two of them map to one
    file name (``SYN0\u00e91``/``SYN0\u00e81``, ``a/b``/``a_b``; ``A1``/``a1`` too, one file where case is ignored) and would share one output file (since 0.2.0)."""
    names: dict[str, str] = {}
    owner: dict[str, str] = {}
    clashes = []
    for pid in ids:
        pid = str(pid)
        if pid in names:
            continue
        n = safe_name(pid)
        names[pid] = n
        key = n.casefold()  # one file on a case-insensitive file system
        if key in owner:
            clashes.append(f"{owner[key]!r} and {pid!r} (file name {n!r})")
        else:
            owner[key] = pid
    if clashes:
        raise DataError(
            f"patient IDs of {what} share one file name: {'; '.join(clashes[:10])}"
            + (f" and {len(clashes) - 10} more" if len(clashes) > 10 else "")
            + ". Output files are named by ID (letters, digits, '.', '_', '-'); rename one of each pair"
        )
    return names
