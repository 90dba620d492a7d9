"""Output folders: checked before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

from lgenet.errors import ConfigError

__all__ = ["ensure_writable_dir"]


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
