"""Where and how a run computes: the device, the arithmetic precision, and the compute record.

Every fit (a classifier fold, a segmentation fold, an anatomy-family fold) records
:func:`compute_signature` in its ``fit.json``; a resumed run must compute the same way
(:func:`same_compute`), or its folds would differ in their last digits.
"""

from __future__ import annotations

import functools
import logging
import platform

import torch

from lgenet import __version__

__all__ = [
    "resolve_device",
    "resolve_precision",
    "cpu_native_bf16",
    "precision_autocast",
    "compute_signature",
    "same_compute",
    "resume_precision",
    "describe_compute",
]

log = logging.getLogger("lgenet")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from lgenet.errors import ConfigError

        raise ConfigError("config parameter 'device' is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(device)


#: CPU feature flags that mean bf16 arithmetic in hardware (x86: AVX512-BF16, AMX; Arm: FEAT_BF16)
_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


def _cpu_flags(text: str) -> set[str]:
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags.update(val.split())
    return flags


@functools.cache
def cpu_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 in hardware, so that bf16 autocast is faster than fp32 here.

    oneDNN must support bf16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported``) *and* the CPU must list a
    native bf16 instruction set in ``/proc/cpuinfo``: AVX512 CPUs without it run bf16 emulated, often
    slower than fp32. Unknown (no ``/proc/cpuinfo``, e.g. macOS) counts as no. ``cpuinfo``: the text to
    parse instead of ``/proc/cpuinfo`` (tests).
    """
    try:
        if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return False
    except (AttributeError, RuntimeError):  # pragma: no cover - a build without oneDNN
        return False
    if cpuinfo is None:
        if platform.system() != "Linux":
            return False
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
                cpuinfo = fh.read()
        except OSError:
            return False
    return bool(_cpu_flags(cpuinfo) & _BF16_FLAGS)


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 on CUDA and on CPUs with native bf16 (:func:`cpu_native_bf16`), else fp32.

    Until 2026-11-27 'auto' meant fp32 on every CPU; a run started then records the precision its fits
    used, and a resume with 'auto' keeps it (``lgenet.workflows.grid.resume_precision``).
    """
    if precision == "auto":
        if device.type == "cuda":
            return "bf16"
        return "bf16" if device.type == "cpu" and cpu_native_bf16() else "fp32"
    if precision == "bf16" and device.type == "cpu" and not cpu_native_bf16():
        # e.g. a command copied from a machine with AMX: a 240-epoch segmentation fold that took ~35 min there
        # had not finished after 70 min here (docs/results.md, configuration 16)
        log.warning(
            "precision bf16 on a CPU without native bf16: it is emulated here, often several times slower "
            "than fp32; use --precision auto (fp32 on this CPU) unless you need bf16's numbers"
        )
    return precision


def precision_autocast(device: torch.device, precision: str):
    """The autocast context of a resolved ``precision`` (``bf16``: bf16 autocast; ``fp32``: none) on ``device``."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=(precision == "bf16"))


def compute_signature(device: str, precision: str, threads: int | None) -> dict:
    """The execution settings that change a fit's numbers (recorded in fit.json; a resume must match)."""
    return {
        "device": str(device).split(":")[0],
        "precision": precision,
        "threads": int(threads) if threads else int(torch.get_num_threads()),
        "torch": torch.__version__.split("+")[0],
        "lgenet": __version__,  # since 0.2.0; not compared on resume (same_compute): a version changes no number by itself
    }


def same_compute(old: dict, new: dict) -> bool:
    """Whether two :func:`compute_signature` records give the same numbers (threads count on CPU only)."""
    keys = ("device", "precision", "torch") + (("threads",) if new.get("device") == "cpu" else ())
    return all(old.get(k) == new.get(k) for k in keys)


def resume_precision(requested: str, resolved: str, device: str, recorded: list[dict]) -> str:
    """The precision a resumed run computes with: what its finished fits recorded, when 'auto' chose it.

    ``recorded``: the finished fits' (or segmentation folds') :func:`compute_signature` records. 'auto' on a
    CPU meant fp32 in runs made with 0.1.0 before its bf16 default (2026-11-27), and bf16 (on CPUs with native
    bf16) since; a run started before, or on another CPU, resumes in the precision of its finished fits rather than mixing the two. A
    precision given explicitly (``--precision fp32|bf16``) is kept, and a clash is then reported by the caller.
    """
    if requested != "auto":
        return resolved
    kind = str(device).split(":")[0]
    old = {c.get("precision") for c in recorded if c.get("device") == kind and c.get("precision")}
    if len(old) == 1 and resolved not in old:
        chosen = old.pop()
        log.warning(
            "resuming with precision %s, as the finished fits used ('auto' now means %s here); pass "
            "--precision to choose",
            chosen,
            resolved,
        )
        return chosen
    return resolved


def describe_compute(c: dict) -> str:
    """A compute record in words, for messages."""
    s = f"device {c.get('device')}, precision {c.get('precision')}, torch {c.get('torch')}"
    return s + (f", {c.get('threads')} thread(s) per fit" if c.get("device") == "cpu" else "")
