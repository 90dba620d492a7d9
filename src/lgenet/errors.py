"""Exceptions raised by lgenet.

Every error a user can cause derives from :class:`LgenetError`; the CLI prints its message
(without a traceback) and exits with status 2. Messages name the file, row or parameter
at fault and say how to fix it.
"""

from __future__ import annotations

__all__ = [
    "LgenetError",
    "ConfigError",
    "ManifestError",
    "ReaderError",
    "WeightsError",
    "DataError",
    "OutputError",
    "short_reason",
]


def short_reason(exc: BaseException) -> str:
    """``Kind: first line`` of a library exception, without advice lgenet must never pass on (PyTorch
    suggests ``weights_only=False``, i.e. unpickling an untrusted file) and never an empty message."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else ""
    for cut in ("Re-running", "weights_only", "(1) In PyTorch", "WeightsUnpickler"):
        if cut in text:
            text = text[: text.index(cut)].rstrip(" .;:,")
    name = type(exc).__name__
    if not text:
        text = {
            "EOFError": "the file ends too early (truncated or empty)",
            "UnpicklingError": "not a PyTorch file, or a damaged one",
        }.get(name, "")
    return f"{name}: {text}" if text else name


class LgenetError(Exception):
    """Base class of every error caused by user input (bad config, file, manifest...)."""


class ConfigError(LgenetError, ValueError):
    """A configuration value is invalid (names the parameter, allowed values, value given)."""


class ReaderError(LgenetError):
    """An image file could not be read (names the file and says why)."""


class WeightsError(LgenetError):
    """A weights file is missing, unreadable or does not fit the architecture."""


class DataError(LgenetError):
    """A cohort or dataset is unusable as a whole (e.g. too few positives for K folds)."""


class OutputError(LgenetError):
    """An output file or folder cannot be written (names the user's path, never a temp file)."""


class ManifestError(LgenetError):
    """One or more rows of a cohort manifest are invalid.

    ``problems`` holds one human-readable line per bad cell; the message lists them all so that a
    user fixes the whole file in one pass.
    """

    def __init__(self, manifest: str, problems: list[str]):
        self.manifest = str(manifest)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"manifest {self.manifest}: {n} problem{'s' if n != 1 else ''} found"
        super().__init__(head + ":\n" + "\n".join(f"  - {p}" for p in self.problems))
