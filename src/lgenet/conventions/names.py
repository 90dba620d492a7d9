"""File names derived from study-local patient IDs."""

from __future__ import annotations

__all__ = ["safe_name"]


def safe_name(text: str) -> str:
    """A file-name-safe form of a study-local id (letters, digits, '.', '_', '-')."""
    out = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "_" for c in str(text))
    return out.strip(".") or "_"
