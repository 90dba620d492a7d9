"""The run-folder protocol that every kind of run uses: the classifier grid (:class:`~lgenet.runs.grid.RunDir`)
and the segmentation CV (:class:`~lgenet.runs.seg.SegRunDir`) are two layouts on it.

A run folder holds::

    <config file>          the resolved, frozen config (``config.yaml`` / ``seg_config.yaml``)
    inputs.json            written when the run starts: the manifest's SHA-256 and a content hash of every input
    profile.json           the training inputs' intensity profile (new inputs are compared with it)
    folds_<name>.csv       patient_id, fold, label: one assignment per task
    run.log                the log (study-local patient ids only)
    .lock                  held while a driver works on the folder (one driver at a time)
    <fit folders>/fit.json written last in each fit's folder: marks the fit done

The protocol, in the order a driver follows it (:meth:`RunFolder.open`):

1. take the lock; remove the temp files a killed process left;
2. compare the saved settings (settings added since the run was made take the values that reproduce what
   it did: :meth:`RunFolder.config_defaults`) and the recorded inputs with this run's;
3. a folder that holds a finished fit is resumed only when both match, else refused with the reason; one
   that holds none is reset (:meth:`RunFolder.reset`) and started again with the new settings;
4. the compute record of the finished fits (device, precision, threads, torch) decides how this run
   computes: 'auto' precision and unpinned threads adopt the recorded ones; a clash is refused;
5. :meth:`RunFolder.write_start` records the config, inputs, profile and folds; every fit is then written
   by :meth:`RunFolder.write_fit` (its files atomically, ``fit.json`` last).
"""

from __future__ import annotations

import abc
import contextlib
import csv
import errno
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lgenet.errors import ConfigError, DataError, LgenetError, short_reason
from lgenet.runs.paths import ensure_writable_dir
from lgenet.utils import atomic_path, atomic_write_text

__all__ = ["RunFolder", "RunBusyError", "ResumeDecision", "ensure_writable_dir"]

log = logging.getLogger("lgenet")


class RunBusyError(LgenetError):
    """Another lgenet process holds the run folder."""


@dataclass
class ResumeDecision:
    """What :meth:`RunFolder.open` decided: how many fits are finished and how this run computes."""

    finished: int
    precision: str
    threads: int
    compute: dict


#: writes one file of a fit: text, bytes, or a function that writes the (temporary) path it is given
FileContent = str | bytes | Callable[[Path], None]


class RunFolder(abc.ABC):
    """Paths, records, lock and resume protocol shared by every run layout (see the module docstring)."""

    #: the run's config file name and what the folder is called in messages
    CONFIG_NAME = "config.yaml"
    WHAT = "an lgenet run directory"
    MAKER = "`lgenet run`"
    #: how a finished fit is called in messages ("fit(s)", "fold(s)")
    FITS = "fit(s)"
    #: config fields that may change between a run and its resumption without changing any result
    RESUME_FREE: frozenset[str] = frozenset()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

    # ------------------------------------------------------------------ layout hooks
    @abc.abstractmethod
    def config_class(self) -> Any:
        """The layout's config class (its saved file is ``CONFIG_NAME``)."""

    def config_defaults(self) -> dict:
        """Settings a saved config may lack (it was made before they existed) -> the values that reproduce
        what such a run did; filled in by :meth:`load_config` and by the resume comparison."""
        return {}

    @abc.abstractmethod
    def finished_fits(self) -> list[Path]:
        """The ``fit.json`` of every finished fit."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget an unfinished start (no finished fit): its fit folders, folds and partial outputs."""

    # ------------------------------------------------------------------ paths
    @property
    def config_path(self) -> Path:
        return self.path / self.CONFIG_NAME

    @property
    def inputs_path(self) -> Path:
        return self.path / "inputs.json"

    @property
    def profile_path(self) -> Path:
        return self.path / "profile.json"

    @property
    def log_path(self) -> Path:
        return self.path / "run.log"

    def folds_path(self, task: str) -> Path:
        return self.path / f"folds_{task}.csv"

    # ------------------------------------------------------------------ config
    def is_run(self) -> bool:
        return self.config_path.is_file()

    def load_config(self):
        """The run's frozen config, with the settings added since it was made filled in."""
        p = self.config_path
        if not p.is_file():
            raise ConfigError(f"{self.path} is not {self.WHAT} (no {self.CONFIG_NAME}); pass the --out of {self.MAKER}")
        try:
            data = yaml.safe_load(p.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ConfigError(f"{p} is unreadable ({short_reason(exc)}); the run directory is damaged") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p} does not hold an lgenet configuration; the run directory is damaged")
        return self.config_class().from_dict({**self.config_defaults(), **data}, source=str(p))

    def saved_config_dict(self) -> dict | None:
        if not self.config_path.is_file():
            return None
        try:
            data = yaml.safe_load(self.config_path.read_text())
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        return data if isinstance(data, dict) else None

    def write_config(self, cfg) -> None:
        m = getattr(cfg, "manifest", None)
        if m and not Path(m).is_absolute():  # since 0.2.0 resolved, so that a command run elsewhere finds it
            cfg = cfg.replace(manifest=str(Path(m).resolve()))
        atomic_write_text(self.config_path, cfg.to_yaml())

    # ------------------------------------------------------------------ records
    def read_json(self, path: Path) -> dict | None:
        """A JSON record of the folder, or None when it is missing or unreadable."""
        try:
            return json.loads(path.read_text()) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def read_inputs(self) -> dict | None:
        return self.read_json(self.inputs_path)

    def read_profile(self) -> dict | None:
        """The training cohort's intensity profile (:mod:`lgenet.data.shift`), or None for older runs."""
        return self.read_json(self.profile_path)

    def recorded_compute(self) -> list[dict]:
        """The compute records (:func:`lgenet.runs.compute.compute_signature`) of the finished fits."""
        out = []
        for f in self.finished_fits():
            rec = self.read_json(f)
            if rec and rec.get("compute"):
                out.append(rec["compute"])
        return out

    # ------------------------------------------------------------------ locking, clean-up, log
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for one driver; a second driver on it is refused at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        fh = open(self.path / ".lock", "a+")
        try:
            try:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except ImportError:  # pragma: no cover - Windows: no advisory locks, no protection
                pass
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise RunBusyError(
                        f"run directory {self.path} is in use by another lgenet process; wait for it to finish "
                        "(or stop it) before running again"
                    ) from None
                raise
            yield
        finally:
            fh.close()

    def clean_temp_files(self) -> list[Path]:
        """Remove temp files that a killed process left (``.<name>.<random>.tmp<suffix>``)."""
        removed: list[Path] = []
        if not self.path.is_dir():
            return removed
        for p in self.path.rglob(".*.tmp*"):
            if p.is_file() and ".tmp" in p.name:
                try:
                    p.unlink()
                    removed.append(p)
                except OSError:  # pragma: no cover - raced with another clean-up
                    pass
        if removed:
            log.info("removed %d temporary file(s) left by an interrupted process", len(removed))
        return removed

    @contextlib.contextmanager
    def file_log(self) -> Iterator[logging.Handler]:
        """Copy the ``lgenet`` log into ``run.log`` while the block runs."""
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z"))
        log.addHandler(handler)
        if log.level == logging.NOTSET or log.level > logging.INFO:
            log.setLevel(logging.INFO)
        try:
            yield handler
        finally:
            log.removeHandler(handler)
            handler.close()

    # ------------------------------------------------------------------ folds
    def read_folds(self, task: str) -> dict[str, int]:
        """``{patient_id: test fold}`` of ``task``."""
        return {p: f for p, (f, _) in self._read_folds_file(task).items()}

    def read_fold_labels(self, task: str) -> dict[str, int]:
        return {p: y for p, (_, y) in self._read_folds_file(task).items()}

    def _read_folds_file(self, task: str) -> dict[str, tuple[int, int]]:
        p = self.folds_path(task)
        if not p.is_file():
            raise DataError(f"{p} is missing: the run directory has no fold assignment for task {task!r}")
        try:
            with open(p, newline="") as fh:
                return {r["patient_id"]: (int(r["fold"]), int(r["label"])) for r in csv.DictReader(fh)}
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise DataError(f"{p} is damaged ({short_reason(exc)}); use a new --out") from None

    def write_folds(self, task: str, folds: dict[str, int], labels: dict[str, int]) -> None:
        """Save the assignment; an existing, different one is an error (the cohort changed)."""
        path = self.folds_path(task)
        if path.exists():
            old = self._read_folds_file(task)
            if old != {p: (folds[p], labels[p]) for p in folds}:
                raise DataError(
                    f"{path} holds another fold assignment than this run's manifest and settings give (its patients, "
                    "folds or labels differ): the file was edited or damaged, or the cohort changed. Restore it, or use "
                    "a new --out"
                )
            return
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["patient_id", "fold", "label"])
        for pid in sorted(folds):
            w.writerow([pid, folds[pid], labels[pid]])
        atomic_write_text(path, buf.getvalue())

    # ------------------------------------------------------------------ the protocol
    def settings_diff(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
        """``name: old -> new`` for every setting that differs and changes results (not in RESUME_FREE)."""
        keys = sorted(k for k in set(old) | set(new) if k not in self.RESUME_FREE and old.get(k) != new.get(k))
        return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys]

    def open(
        self,
        cfg,
        *,
        inputs_diff: Callable[[dict], list[str]],
        inputs_sha256: str,
        device: str,
        precision: str,
        threads: int,
        threads_pinned: bool,
    ) -> ResumeDecision:
        """Check a resumed folder against this run, or restart an unfinished one (module docstring, steps 2-4).

        Args:
            cfg: this run's config (its ``to_dict()`` is compared with the saved one, through the config
                class's ``resume_view`` when it has one).
            inputs_diff: the differences between the recorded inputs (``inputs.json``) and this run's, in words.
            inputs_sha256: this run's manifest SHA-256 (checked against older runs without ``inputs.json``).
            device, precision, threads: how this run would compute; ``threads_pinned``: given by the user.
        """
        from lgenet.runs.compute import compute_signature, describe_compute, resume_precision, same_compute

        self.clean_temp_files()
        finished = self.finished_fits()
        old_cfg = self.saved_config_dict()
        if finished and old_cfg is None:
            state = "damaged" if self.config_path.exists() else "missing"
            raise ConfigError(
                f"run directory {self.path} holds {len(finished)} finished {self.FITS} but its {self.CONFIG_NAME} is "
                f"{state}, so their settings cannot be checked against this run's; restore {self.CONFIG_NAME}, or use "
                "a new --out"
            )
        if finished and self.inputs_path.exists() and self.read_inputs() is None:
            raise ConfigError(
                f"run directory {self.path}: inputs.json is damaged, so the finished {self.FITS}' inputs cannot be "
                "checked against this run's; restore it, or use a new --out"
            )
        reasons = []
        if old_cfg is not None:
            view = getattr(self.config_class(), "resume_view", None)
            old, new = {**self.config_defaults(), **old_cfg}, cfg.to_dict()
            if view is not None:
                old, new = view(old, new)
            diff = self.settings_diff(old, new)
            if diff:
                reasons.append("started with different settings (" + ", ".join(diff[:6]) + ")")
        old_inputs = self.read_inputs()
        if old_inputs is not None:
            d = inputs_diff(old_inputs)
            if d:
                reasons.append("started on other inputs: " + "; ".join(d))
        elif finished and self.manifest_sha256() not in (None, inputs_sha256):
            reasons.append("started on other inputs: the manifest's content (SHA-256) differs")
        if reasons and finished:
            raise ConfigError(
                f"run directory {self.path} was {' and '.join(reasons)}. It holds {len(finished)} finished "
                f"{self.FITS}; resuming would mix results. Use the same settings and inputs to resume, or a new --out "
                "for a new run"
            )
        if reasons:
            log.info("run directory %s holds no finished fit; starting it again (%s)", self.path, "; ".join(reasons))
            self.reset()
        recorded = self.recorded_compute()
        precision = resume_precision(cfg.precision, precision, device, recorded)
        now = compute_signature(device, precision, threads)
        if recorded and not threads_pinned and now.get("device") == "cpu" and recorded[0].get("threads"):
            t = int(recorded[0]["threads"])
            if t != threads:  # not pinned by --threads: resume with the finished fits' own thread count
                log.warning(
                    "resuming with %d torch thread(s) per fit, as the finished %s used (the machine's load would "
                    "suggest %d); pass --threads to choose",
                    t,
                    self.FITS,
                    threads,
                )
                threads = t
                now = compute_signature(device, precision, threads)
        for old_c in recorded:
            if not same_compute(old_c, now):
                raise ConfigError(
                    f"run directory {self.path}: finished {self.FITS} were computed with {describe_compute(old_c)}; "
                    f"this run would use {describe_compute(now)}. Their numbers differ in the last digits, so the run "
                    f"would mix them. Resume with the same settings (e.g. --threads {old_c.get('threads')} --device "
                    f"{old_c.get('device')} --precision {old_c.get('precision')}, on torch {old_c.get('torch')}), or "
                    "use a new --out"
                )
        return ResumeDecision(finished=len(finished), precision=precision, threads=threads, compute=now)

    def manifest_sha256(self) -> str | None:
        """The manifest hash the run started with (inputs.json; run.json of older grid runs)."""
        rec = self.read_inputs() or {}
        return rec.get("manifest_sha256") or (self.read_json(self.path / "run.json") or {}).get("manifest_sha256")

    def write_start(self, cfg, *, inputs: dict, profile: dict, folds: Mapping[str, tuple[dict, dict]]) -> None:
        """config, inputs.json, profile.json and folds_<name>.csv, before the first fit (step 5)."""
        self.write_config(cfg)
        atomic_write_text(self.inputs_path, json.dumps(inputs, indent=1))
        atomic_write_text(self.profile_path, json.dumps(profile, indent=1))
        for name, (assignment, labels) in folds.items():
            self.write_folds(name, assignment, labels)

    def write_fit(self, fit_dir: Path, files: Mapping[str, FileContent], info: dict, *, indent: int = 2) -> Path:
        """Write one fit's files atomically in the given order, then ``fit.json`` (``info``): the fit is done."""
        fit_dir.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            if isinstance(content, str):
                atomic_write_text(fit_dir / name, content)
            else:
                with atomic_path(fit_dir / name) as tmp:
                    if isinstance(content, bytes):
                        Path(tmp).write_bytes(content)
                    else:
                        content(Path(tmp))
        atomic_write_text(fit_dir / "fit.json", json.dumps(info, indent=indent))  # last: marks the fit done
        return fit_dir
