"""The synthetic cohort writer (:func:`make_cohort`; the layout of its folder: :mod:`lgenet.data.synth`)."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lgenet.conventions.thresholds import LGE_THRESHOLD
from lgenet.data.phantom import LABELS, LGE, MYOCARDIUM, make_phantom
from lgenet.data.synth.dicom import (
    TRANSFER_SYNTAXES,
    SaxGeometry,
    SeriesHeader,
    _fmt,
    write_dicom_series,
    write_label_nifti,
)
from lgenet.data.synth.identifiers import _check_identifiers, _identifiers_for
from lgenet.data.synth.outcomes import HAZARD, _pct, _quart, _rate, _sample_targets, draw_followup, true_log_hazard
from lgenet.errors import ConfigError
from lgenet.utils import atomic_write_text

__all__ = ["make_cohort", "write_cohort", "CohortSpec", "MANIFEST_COLUMNS"]

MANIFEST_COLUMNS = (
    "patient_id",
    "image",
    "slice",
    "lge_percent",
    "event",
    "followup_years",
    "age",
    "sex",
    "lvef",
    "mask",
)
#: header keywords that identify a person, a visit or a place; set by ``identifiers``
_OUTPUTS = ("dicom", "masks", "manifest.csv", "cohort_summary.json", "truth.csv")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _check_int(name: str, v: Any, lo: int, hi: int) -> int:
    if not _is_int(v) or not lo <= int(v) <= hi:
        raise ConfigError(f"{name} must be an integer between {lo} and {hi}; got {v!r}")
    return int(v)


def _check_fraction(name: str, v: Any, lo: float, hi: float, open_ends: bool = False) -> float:
    ok = _is_num(v) and math.isfinite(float(v))
    if ok:
        f = float(v)
        ok = (lo < f < hi) if open_ends else (lo <= f <= hi)
    if not ok:
        rng = f"strictly between {lo} and {hi}" if open_ends else f"between {lo} and {hi}"
        raise ConfigError(f"{name} must be a number {rng}; got {v!r}")
    return float(v)


def _check_slices(v: Any) -> tuple[int, int]:
    lo_ok, hi_ok = 3, 30
    if _is_int(v):
        pair = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(x) for x in v):
        pair = (int(v[0]), int(v[1]))
    else:
        raise ConfigError(
            f"n_slices must be an integer or a (min, max) pair of integers between {lo_ok} and {hi_ok}; got {v!r}"
        )
    if not (lo_ok <= pair[0] <= pair[1] <= hi_ok):
        raise ConfigError(
            f"n_slices must be an integer or a (min, max) pair with {lo_ok} <= min <= max <= {hi_ok}; got {v!r}"
        )
    return pair


def _prepare_out_dir(out_dir: Any, overwrite: bool) -> Path:
    try:
        out = Path(out_dir)
    except TypeError:
        raise ConfigError(f"out_dir must be a folder path; got {out_dir!r}") from None
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir {str(out)!r} exists and is not a folder; pick an empty folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ConfigError(
                f"out_dir {str(out)!r} exists and is not empty; pick an empty (or new) folder "
                "or pass overwrite=True to replace a previous synthetic cohort there"
            )
        for name in _OUTPUTS:  # remove only what a previous make_cohort wrote
            p = out / name
            if p.is_dir():
                shutil.rmtree(p)
            elif p.exists():
                p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


# ----------------------------------------------------------------------------- identifiers


def make_cohort(
    out_dir: str | Path,
    *,
    n_patients: int = 116,
    image_size: int = 128,
    n_slices: int | tuple[int, int] = (5, 8),
    seed: int = 0,
    lge_fraction_none: float = 0.57,
    lge_fraction_high: float = 0.16,
    event_rate: float = 0.20,
    identifiers: str | Mapping[str, Any] | Callable[[int, str], Mapping[str, Any]] | None = "fake",
    transfer_syntax: str = "explicit-le",
    progress: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write a synthetic LGE cohort to ``out_dir`` and return the path of its ``manifest.csv``.

    Args:
        out_dir: an empty or new folder (``overwrite=True`` replaces a previous cohort there).
        n_patients: 8..100000; ids ``SYN001``, ``SYN002``...
        image_size: rows = columns of every frame, 32..1024 (field of view ~180-215 mm).
        n_slices: slices per stack, an integer or an inclusive (min, max) range, 3..30.
        seed: non-negative integer; the same arguments and seed give byte-identical files.
        lge_fraction_none: share of patients without LGE (0..1).
        lge_fraction_high: share with LGE burden > 5.7% (0..1; with ``lge_fraction_none`` <= 1);
            the rest have 0 < burden <= 5.7%. Counts are ``round(fraction * n_patients)``.
        event_rate: share of patients with a clinical event (strictly between 0 and 1).
        identifiers: ``"fake"`` (recognisable fake identifiers, see :func:`fake_identifiers`),
            ``None`` (the :data:`IDENTIFIER_KEYWORDS` tags left blank), a dict
            ``{DICOM keyword: value}`` whose string values may use ``{index}`` (1-based) /
            ``{patient_id}`` placeholders, or a callable ``(index, patient_id) -> dict``.
            Identifier keywords a custom spec leaves out stay blank. PatientSex and PatientAge
            are always written (they are the cohort's covariates, not identifiers).
        transfer_syntax: ``"explicit-le"`` (Explicit VR Little Endian) or ``"rle"`` (RLE Lossless).
        progress: show a tqdm progress bar.
        overwrite: allow a non-empty ``out_dir`` (only this generator's outputs are replaced).

    The parameters are the fields of :class:`CohortSpec` plus ``progress`` and ``overwrite``: this
    is the keyword entry point of ``lgenet synth``, ``lgenet demo``, the tests and the benchmarks,
    kept flat so that each call names only what it changes (hence more than 8 parameters);
    :func:`write_cohort` takes the spec itself.

    Raises:
        ConfigError: an argument is out of range (the message names it, the allowed values and
            the value received) or ``out_dir`` is not empty.
    """
    spec = CohortSpec(
        n_patients=n_patients,
        image_size=image_size,
        n_slices=n_slices,
        seed=seed,
        lge_fraction_none=lge_fraction_none,
        lge_fraction_high=lge_fraction_high,
        event_rate=event_rate,
        identifiers=identifiers,
        transfer_syntax=transfer_syntax,
    )
    return write_cohort(out_dir, spec, progress=progress, overwrite=overwrite)


@dataclass(frozen=True)
class CohortSpec:
    """What :func:`write_cohort` draws (each field as the parameter of :func:`make_cohort`, checked there)."""

    n_patients: int = 116
    image_size: int = 128
    n_slices: int | tuple[int, int] = (5, 8)
    seed: int = 0
    lge_fraction_none: float = 0.57
    lge_fraction_high: float = 0.16
    event_rate: float = 0.20
    identifiers: str | Mapping[str, Any] | Callable[[int, str], Mapping[str, Any]] | None = "fake"
    transfer_syntax: str = "explicit-le"


def write_cohort(out_dir: str | Path, spec: CohortSpec, *, progress: bool = True, overwrite: bool = False) -> Path:
    """Write the synthetic cohort ``spec`` describes to ``out_dir``; see :func:`make_cohort`."""
    n_patients, image_size, n_slices, seed = spec.n_patients, spec.image_size, spec.n_slices, spec.seed
    lge_fraction_none, lge_fraction_high, event_rate = spec.lge_fraction_none, spec.lge_fraction_high, spec.event_rate
    identifiers, transfer_syntax = spec.identifiers, spec.transfer_syntax
    n = _check_int("n_patients", n_patients, 8, 100_000)
    size = _check_int("image_size", image_size, 32, 1024)
    s_lo, s_hi = _check_slices(n_slices)
    if not _is_int(seed) or int(seed) < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}")
    seed = int(seed)
    f_none = _check_fraction("lge_fraction_none", lge_fraction_none, 0.0, 1.0)
    f_high = _check_fraction("lge_fraction_high", lge_fraction_high, 0.0, 1.0)
    if f_none + f_high > 1.0 + 1e-9:
        raise ConfigError(
            "lge_fraction_none + lge_fraction_high must be at most 1 (the rest have 0 < LGE <= "
            f"5.7%); got {f_none} + {f_high} = {f_none + f_high:.3f}"
        )
    ev_rate = _check_fraction("event_rate", event_rate, 0.0, 1.0, open_ends=True)
    ident_spec = _check_identifiers(identifiers)
    if transfer_syntax not in TRANSFER_SYNTAXES:
        raise ConfigError(
            f"transfer_syntax must be one of {', '.join(map(repr, TRANSFER_SYNTAXES))}; got {transfer_syntax!r}"
        )
    out = _prepare_out_dir(out_dir, bool(overwrite))

    from tqdm.auto import tqdm

    master = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    targets, groups = _sample_targets(master, n, f_none, f_high)
    latent_noise = master.exponential(1.0, size=n)  # unit-exponential draws of the survival times
    width = max(3, len(str(n)))

    rows: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    lge = np.zeros(n)
    basal = np.zeros(n)
    ages = np.zeros(n, dtype=int)
    sexes = np.zeros(n, dtype=int)
    lvefs = np.zeros(n)
    censor = np.zeros(n)
    nsl = np.zeros(n, dtype=int)
    bar = tqdm(total=n, disable=not progress, desc="synthetic LGE cohort", unit="patient")
    try:
        for i in range(n):
            pid = f"SYN{i + 1:0{width}d}"
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, i)))
            S = int(rng.integers(s_lo, s_hi + 1))
            stack = make_phantom(rng, image_size=size, n_slices=S, target_lge_percent=float(targets[i]))
            geom = SaxGeometry(rng, stack)
            age = int(np.clip(round(rng.normal(56.0, 9.0)), 22, 88))
            sex = int(rng.random() < 0.40)
            lvef = float(np.clip(rng.normal(59.8, 10.0) - 0.35 * stack.lge_percent, 15.0, 78.0))
            censor[i] = float(np.clip(rng.normal(5.45, 0.75), 2.0, 9.0))
            rng.beta(1.6, 1.4)  # no longer used; drawn so that each patient's image stream is unchanged
            gain = float(rng.uniform(300.0, 1200.0))
            names: list[str] = []
            while len(names) < S:
                nm = f"IM_{rng.bytes(4).hex().upper()}.dcm"
                if nm not in names:
                    names.append(nm)
            ids = _identifiers_for(ident_spec, i + 1, pid, seed, age)
            header = SeriesHeader(
                uid_key=(seed, pid), identifiers=ids, age=age, sex=sex, gain=gain, transfer_syntax=transfer_syntax
            )
            write_dicom_series(out / "dicom" / pid, stack, geom, header, names)
            write_label_nifti(out / "masks" / f"{pid}.nii.gz", stack.labels, geom)
            lge[i], basal[i] = stack.lge_percent, stack.basal_lge_percent
            ages[i], sexes[i], lvefs[i], nsl[i] = age, sex, round(lvef, 1), S
            rows.append({"patient_id": pid, "image": f"dicom/{pid}", "slice": "basal", "mask": f"masks/{pid}.nii.gz"})
            truth.append(
                {
                    "patient_id": pid,
                    "lge_percent": f"{stack.lge_percent:.4f}",
                    "basal_lge_percent": f"{stack.basal_lge_percent:.4f}",
                    "target_lge_percent": f"{targets[i]:.4f}",
                    "n_blobs": stack.n_blobs,
                    "n_slices": S,
                    "image_size": size,
                    "pixel_spacing_mm": _fmt(stack.pixel_spacing[0], 4),
                    "slice_spacing_mm": _fmt(stack.slice_spacing, 3),
                    "myocardium_px": int(np.count_nonzero((stack.labels == MYOCARDIUM) | (stack.labels == LGE))),
                }
            )
            bar.update(1)
    finally:
        bar.close()

    # events: a proportional-hazards (Cox) model with known coefficients (HAZARD), Weibull baseline,
    # administrative censoring at each patient's follow-up; the baseline scale is set so that exactly
    # round(rate * n) patients have their event before censoring
    eta = true_log_hazard(lge, ages, lvefs)
    events, follow, scale = draw_followup(eta, censor, latent_noise, ev_rate)
    for i, t in enumerate(truth):
        t["true_log_hazard"] = f"{eta[i]:.6f}"
    for i, r in enumerate(rows):
        r.update(
            lge_percent=f"{lge[i]:.3f}",
            event=int(events[i]),
            followup_years=f"{follow[i]:.2f}",
            age=int(ages[i]),
            sex=int(sexes[i]),
            lvef=f"{lvefs[i]:.1f}",
        )
    manifest = out / "manifest.csv"
    from lgenet.data.manifest import write_manifest

    write_manifest(manifest, rows, columns=MANIFEST_COLUMNS)

    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=list(truth[0]), lineterminator="\n")
    wr.writeheader()
    wr.writerows(truth)
    atomic_write_text(out / "truth.csv", buf.getvalue())

    lge_r = np.round(lge, 3)
    none, high = lge_r == 0, lge_r > LGE_THRESHOLD
    low = ~none & ~high
    summary = {
        "generator": "lgenet.data.synth.make_cohort",
        "seed": seed,
        "n_patients": n,
        "image_size": size,
        "n_slices_range": [s_lo, s_hi],
        "n_slices_mean": round(float(nsl.mean()), 2),
        "transfer_syntax": transfer_syntax,
        "identifiers": "fake" if ident_spec == "fake" else ("blank" if ident_spec is None else "custom"),
        "label_codes": {str(c): name for c, name in LABELS.items()},
        "lge_threshold_percent": LGE_THRESHOLD,
        "targets": {
            "lge_fraction_none": f_none,
            "lge_fraction_high": f_high,
            "event_rate": ev_rate,
        },
        "pct_no_lge": _pct(none),
        "pct_lge_0_to_5_7": _pct(low),
        "pct_lge_gt_5_7": _pct(high),
        "lge_percent_mean": round(float(lge.mean()), 3),
        "lge_percent_sd": round(float(lge.std(ddof=1)), 3),
        "lge_percent_mean_gt_5_7": round(float(lge[high].mean()), 3) if high.any() else None,
        "lge_percent_sd_gt_5_7": round(float(lge[high].std(ddof=1)), 3) if high.sum() > 1 else None,
        "pct_gt_5_7_with_lge_on_basal_slice": _pct(basal[high] > 0) if high.any() else None,
        "event_rate": round(float(events.mean()), 4),
        "event_rate_by_group": {
            "no_lge": _rate(events, none),
            "lge_0_to_5_7": _rate(events, low),
            "lge_gt_5_7": _rate(events, high),
            "lge_le_5_7": _rate(events, ~high),
        },
        "followup_years_quartiles": _quart(follow),
        "age_quartiles": _quart(ages),
        "pct_female": _pct(sexes == 1),
        "lvef_quartiles": _quart(lvefs),
        "sex_coding": "1 = female, 0 = male",
        "hazard": {
            "model": "h(t | x) = scale * shape * t^(shape - 1) * exp(eta); eta = sum(coef * x); "
            "event = time <= censoring (administrative, ~N(5.45, 0.75) years)",
            "coefficients": {k: v for k, v in HAZARD.items() if k != "shape"},
            "covariates": {"log1p_lge_percent": "log(1 + lge_percent)", "age": "years", "lvef": "percent"},
            "shape": HAZARD["shape"],
            "scale": round(float(scale), 8),
        },
    }
    atomic_write_text(out / "cohort_summary.json", json.dumps(summary, indent=2) + "\n")
    return manifest
