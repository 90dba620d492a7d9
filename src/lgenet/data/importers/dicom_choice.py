"""Study intake, the choice: which series of each study is its LGE short-axis stack (``lgenet import dicom``, since
0.3.0; :mod:`lgenet.data.importers.dicom_studies` writes the result).

Every image frame under the folder is indexed from its header (:mod:`lgenet.io.dicom_index`), grouped by study
and series (a series holding both magnitude and PSIR images is split by kind), and each image set is judged:

========================  ====================================================================================
skipped as                when
========================  ====================================================================================
``localiser``             ImageType says LOCALIZER, or the series description names a localiser/scout/survey
``no geometry``           a frame lacks Image Orientation / Position (Patient)
``not one stack``         the frames are not parallel (a multi-plane localiser or a radial set)
``long axis``             the slice normal lies more than ~53 deg from the LV's long axis (``|n.a| < 0.6``,
                          ``a`` = left-anterior-inferior, :data:`lgenet.io.geometry.APEX_DIRECTION`): 2-, 3-,
                          4-chamber and other long-axis views
``not oblique``           the plane is transverse, coronal or sagittal within 15 deg (short-axis planes are
                          double-oblique): a survey or a thorax series
``cine``                  several frames at one slice position with different trigger times (cine, or any
                          time series); ``repeated positions``: several frames at one position otherwise
``too few slices``        fewer than ``min_slices`` parallel slice positions
``phase image``           ImageType's third value is P (the phase of a phase-sensitive pair, not PSIR)
``not inversion recovery`` no inversion time, no IR in the scanning sequence, and no LGE word in the series
                          description (LGE, PSIR, DE, MDE, DELAYED, LATE, VIAB)
========================  ====================================================================================

What is left are the study's LGE candidates, each ``magnitude`` or ``psir`` (PSIR in ImageType or in the series
description, or signed stored values). **The rule when a study has several**, in this order:

1. the preferred kind (``prefer``, default ``magnitude``: lgenet's segmenter and the seed study's models were
   trained on magnitude inversion-recovery images; PSIR's signed scale lies outside that range);
2. more slice positions (more of the LV covered);
3. the later acquisition (higher series number, then later acquisition time): a repeated acquisition is usually
   the better one.

One study per patient: a patient (the same patient ID, or name and birth date) with several studies keeps the
earliest study that has a candidate, so that no patient can fall on both sides of a fold; the others are
reported. Every study gets a study-local ID (P001, P002, ... in the order of the patients' archive keys, so the
same archive in another layout gets the same IDs). No name, ID, date, UID, description or archive path reaches
the manifest or its sidecar; ``id_map`` writes the mapping to the archive's identifiers, only when asked, to a
file the user keeps.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from lgenet.errors import ConfigError
from lgenet.io.dicom_index import ArchiveIndex, IndexedFrame
from lgenet.io.geometry import APEX_DIRECTION, MIN_PARALLEL_COS, slice_normal

__all__ = ["PREFER", "StudyChoice", "choose_stacks", "skipped_text"]

PREFER = ("magnitude", "psir")
#: |n . a| at least this for a short-axis-like plane (a = the nominal LV long axis); long-axis views lie below
MIN_SAX_COS = 0.6
#: a plane whose normal is within 15 deg of a patient axis is transverse, coronal or sagittal, not short axis
AXIS_ALIGNED_COS = float(np.cos(np.radians(15.0)))
#: two slices nearer than this along the normal are at one position
SAME_POSITION_MM = 0.5
_LOCALISER_WORDS = re.compile(r"LOCALI[SZ]ER|SCOUT|SURVEY|PILOT|\bLOC\b|TRI[- ]?PLANE|3[- ]?PLANE")
_LGE_WORDS = re.compile(r"\bLGE\b|PSIR|\bDE\b|\bMDE\b|DELAY|LATE|VIAB|\bIR\b|INVERSION")


@dataclass
class _Set:
    """One image set: the frames of one series of one kind."""

    series_number: int | None
    kind: str
    frames: list[IndexedFrame]
    slices: int = 0
    spacing_mm: float | None = None
    inversion_ms: float | None = None
    skip: str | None = None

    def describe(self) -> str:
        label = "PSIR" if self.kind == "psir" else "magnitude IR"
        sn = f"series {self.series_number}: " if self.series_number is not None else ""
        sp = f", {self.spacing_mm:.1f} mm apart" if self.spacing_mm else ""
        ti = f", TI {self.inversion_ms:.0f} ms" if self.inversion_ms else ""
        return f"{sn}{label}, {self.slices} slices{sp}{ti}"

    def order_key(self) -> tuple:
        t = max((f.acquisition_time for f in self.frames), default="")
        return (self.slices, self.series_number if self.series_number is not None else -1, t)


@dataclass
class StudyChoice:
    """What the intake decided for one study: ``patient_id`` (study-local), the chosen set or None, and why."""

    patient_id: str
    study: int  # 1-based index of the study among the patient's studies, in date order
    n_studies: int
    chosen: _Set | None
    reason: str
    candidates: list[_Set] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)


def _kind(f: IndexedFrame) -> str:
    """psir, phase or magnitude: ImageType's PSIR or signed stored values first, then ImageType's third value
    (M magnitude, P phase), then the series description."""
    if "PSIR" in f.image_type or f.signed:
        return "psir"
    flag = f.image_type[2] if len(f.image_type) >= 3 else ""
    if flag == "P":
        return "phase"
    if flag != "M" and "PSIR" in re.split(r"[^A-Z0-9]+", f.description):
        return "psir"
    return "magnitude"


def _judge(s: _Set, min_slices: int) -> str | None:
    """Why the set is not an LGE short-axis stack, or None (and fills its slices, spacing, TI)."""
    fr = s.frames
    f0 = fr[0]
    if "LOCALIZER" in f0.image_type or _LOCALISER_WORDS.search(f0.description):
        return "localiser"
    if any(f.orientation is None or f.position is None for f in fr):
        return "no geometry"
    normals = [slice_normal(f.orientation) for f in fr]
    if any(n is None for n in normals):
        return "no geometry"
    n0 = normals[0]
    if any(abs(float(np.dot(n, n0))) < MIN_PARALLEL_COS for n in normals):
        return "not one stack"
    if abs(float(np.dot(n0, APEX_DIRECTION))) < MIN_SAX_COS:
        return "long axis"
    if float(np.max(np.abs(n0))) > AXIS_ALIGNED_COS:
        return "not oblique"
    s_pos = np.array([float(np.dot(f.position, n0)) for f in fr])
    order = np.argsort(s_pos)
    groups: list[list[int]] = []
    for i in order:
        if groups and abs(s_pos[i] - s_pos[groups[-1][0]]) < SAME_POSITION_MM:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    if any(len(g) > 1 for g in groups):
        times = {fr[i].trigger_time for g in groups for i in g}
        return "cine" if len(times) > 1 else "repeated positions"
    s.slices = len(groups)
    if s.slices < min_slices:
        return "too few slices"
    if s.kind == "phase":
        return "phase image"
    has_ir = any(f.inversion_time for f in fr) or "IR" in f0.scanning_sequence
    if not has_ir and not _LGE_WORDS.search(f0.description.replace("_", " ")):
        return "not inversion recovery"
    steps = np.diff(np.sort(s_pos))
    s.spacing_mm = float(np.median(steps)) if steps.size else None
    tis = [f.inversion_time for f in fr if f.inversion_time]
    s.inversion_ms = float(np.median(tis)) if tis else None
    return None


_SKIP_WORDS = {
    "localiser": "localiser",
    "no geometry": "without slice geometry",
    "not one stack": "not one parallel stack",
    "long axis": "long-axis view",
    "not oblique": "transverse/coronal/sagittal",
    "cine": "cine",
    "repeated positions": "with repeated slice positions",
    "too few slices": "with too few slices",
    "phase image": "phase image",
    "not inversion recovery": "not inversion recovery",
}


def skipped_text(c: Counter) -> str:
    return ", ".join(f"{n} {_SKIP_WORDS.get(k, k)}" for k, n in sorted(c.items())) or "no image series"


def _choose(cands: list[_Set], prefer: str) -> tuple[_Set, str]:
    ranked = sorted(cands, key=lambda s: (s.kind == prefer, *s.order_key()), reverse=True)
    best = ranked[0]
    if len(ranked) == 1:
        return best, "the only LGE short-axis candidate"
    why = []
    for other in ranked[1:]:
        if other.kind != best.kind:
            w = f"{prefer} preferred, --prefer {prefer}" if best.kind == prefer else "more slices"
        elif other.slices != best.slices:
            w = "more slices"
        else:
            w = "the later acquisition"
        why.append(f"{other.describe()} ({w})")
    return best, f"chosen over {len(ranked) - 1} other candidate(s): " + "; ".join(why)


def choose_stacks(index: ArchiveIndex, *, prefer: str = "magnitude", min_slices: int = 2) -> list[StudyChoice]:
    """Group ``index`` by patient, study and series, judge every image set and choose each study's stack."""
    if prefer not in PREFER:
        raise ConfigError(f"--prefer must be one of {', '.join(PREFER)}; got {prefer!r}")
    if min_slices < 1:
        raise ConfigError(f"--min-slices must be at least 1; got {min_slices}")
    studies: dict[str, list[IndexedFrame]] = defaultdict(list)
    for f in index.frames:
        studies[f.study_uid or f"no-study:{f.series_uid}"].append(f)
    patients: dict[str, list[str]] = defaultdict(list)
    for uid, frames in studies.items():
        key = frames[0].patient_key or f"study:{uid}"
        patients[key].append(uid)
    choices: list[StudyChoice] = []
    for p_i, pkey in enumerate(sorted(patients), start=1):
        pid = f"P{p_i:03d}"
        uids = sorted(patients[pkey], key=lambda u: (studies[u][0].study_date, u))
        kept = False
        for s_i, uid in enumerate(uids, start=1):
            sets: dict[tuple, list[IndexedFrame]] = defaultdict(list)
            for f in studies[uid]:
                sets[(f.series_uid, _kind(f))].append(f)
            cands, skipped = [], Counter()
            for (_, kind), frames in sorted(sets.items(), key=lambda kv: (kv[1][0].series_number or 0, kv[0])):
                s = _Set(series_number=frames[0].series_number, kind=kind, frames=frames)
                s.skip = _judge(s, min_slices)
                if s.skip:
                    skipped[s.skip] += 1
                else:
                    cands.append(s)
            if kept:
                reason = (
                    f"a later study of the same patient ({pid}): one study per patient, the earliest with an LGE "
                    "stack, so that no patient is on both sides of a fold"
                )
                choices.append(StudyChoice(pid, s_i, len(uids), None, reason, cands, skipped))
            elif not cands:
                reason = f"no LGE short-axis stack among its series ({skipped_text(skipped)})"
                choices.append(StudyChoice(pid, s_i, len(uids), None, reason, cands, skipped))
            else:
                best, reason = _choose(cands, prefer)
                choices.append(StudyChoice(pid, s_i, len(uids), best, reason, cands, skipped))
                kept = True
    return choices
