"""Small shared helpers: atomic file writes, seeding, logging set-up."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lgenet.errors import OutputError

__all__ = [
    "atomic_path",
    "atomic_write_text",
    "atomic_write_bytes",
    "seed_everything",
    "torch_threads",
    "sha256_file",
    "get_logger",
]


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success it is renamed onto ``target``.

    A crash or exception leaves ``target`` untouched (either the old file or none), never a
    half-written file. ``suffix`` defaults to the target's own suffix so that libraries that pick
    the format from the name (matplotlib, nibabel) still work.
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is an existing folder; give a file path")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise OutputError(f"cannot write {target}: a part of its folder path is an existing file") from None
    except OSError as exc:
        raise OutputError(f"cannot create the folder of {target}: {exc.strerror or exc}") from None
    sfx = target.suffix if suffix is None else suffix
    if target.name.endswith(".nii.gz"):
        sfx = ".nii.gz"
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{sfx}", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; outputs get the usual permissions
    try:
        try:
            yield tmp_path
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.EPERM):
                raise OutputError(f"cannot write {target}: {exc.strerror}") from None
            raise
        try:
            os.replace(tmp_path, target)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(target: str | Path, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(target)


def atomic_write_text(target: str | Path, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (unchanged when ``n`` is None), then restore them."""
    import torch

    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(old)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) global generators."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def get_logger(name: str = "lgenet") -> logging.Logger:
    return logging.getLogger(name)


def busy_cores(window: float = 0.5) -> float:
    """How many cores other processes keep busy right now.

    On Linux: the machine's non-idle CPU time over ``window`` seconds (``/proc/stat``) minus this
    process's own, in cores. Unlike the 1-minute load average, this forgets a job that has just ended --
    e.g. lgenet's own segmentation before its grid, which the load average counted as a competing
    process for a minute or two. Elsewhere: the 1-minute load average (0 when there is none).
    """
    import time

    def stat() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as fh:
            vals = [int(v) for v in fh.readline().split()[1:9]]
        return sum(vals), vals[3] + vals[4]  # total, idle + iowait (guest time is already in user)

    try:
        t0, i0 = stat()
        own0 = os.times()
        time.sleep(window)
        t1, i1 = stat()
        own1 = os.times()
        total = t1 - t0
        if total <= 0:
            raise ValueError("no CPU time elapsed")
        busy = (total - (i1 - i0)) / total * (os.cpu_count() or 1)
        own = ((own1.user - own0.user) + (own1.system - own0.system)) / max(own1.elapsed - own0.elapsed, 1e-6)
        return max(0.0, busy - own)
    except (OSError, ValueError, IndexError):
        try:
            return float(os.getloadavg()[0])
        except (AttributeError, OSError):  # pragma: no cover - no load average on this platform
            return 0.0


def jsonable(v):
    """``v`` as JSON can hold it: NaN and infinities as None, NumPy scalars as Python numbers, keys as strings."""
    import math
    import numbers

    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, numbers.Integral):
        return int(v)
    if isinstance(v, numbers.Real):
        f = float(v)
        return f if math.isfinite(f) else None
    return v


def source_commit() -> str | None:
    """The git commit lgenet runs from (``None`` outside a git checkout, e.g. an installed wheel)."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None
