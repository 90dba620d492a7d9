"""Identifiers written into the synthetic DICOM headers: recognisable fakes, blanks or a custom spec."""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping
from typing import Any

from lgenet.errors import ConfigError

__all__ = ["IDENTIFIER_KEYWORDS", "fake_identifiers"]

#: header keywords that identify a person, a visit or a place; set by ``identifiers``
IDENTIFIER_KEYWORDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "InstitutionName",
    "InstitutionAddress",
    "AccessionNumber",
    "ReferringPhysicianName",
    "OperatorsName",
    "StationName",
    "DeviceSerialNumber",
    "StudyID",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "AcquisitionDate",
    "ContentDate",
)


def _check_identifiers(v: Any) -> Any:
    if v is None or v == "fake" or callable(v):
        return v
    if isinstance(v, Mapping):
        from pydicom.datadict import tag_for_keyword

        bad = [k for k in v if not isinstance(k, str) or tag_for_keyword(k) is None]
        if bad:
            raise ConfigError(
                f"identifiers: {bad!r} are not DICOM keywords; use keywords such as "
                f"{', '.join(IDENTIFIER_KEYWORDS[:4])}"
            )
        return v
    raise ConfigError(
        "identifiers must be 'fake', None, a dict {DICOM keyword: value or template with "
        f"{{index}}/{{patient_id}}}} or a callable (index, patient_id) -> dict; got {v!r}"
    )


def _digest(*parts: Any) -> int:
    h = hashlib.sha256("|".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(h[:8], "big")


def _study_date(seed: int, index: int) -> _dt.date:
    return _dt.date(2012, 1, 2) + _dt.timedelta(days=_digest(seed, index, "date") % (5 * 365))


def fake_identifiers(index: int, *, seed: int = 0, age: int = 56) -> dict[str, str]:
    """Recognisable but fake identifiers for synthetic patient number ``index`` (1-based).

    Deterministic in (``index``, ``seed``, ``age``); never equal to the study-local patient_id
    (``SYN001``...)::

        >>> fake_identifiers(7)["PatientName"], fake_identifiers(7)["PatientID"]
        ('SYNTHETIC^PATIENT0007', 'MRN-SYN-0007')
    """
    d = _study_date(seed, index)
    h = _digest(seed, index, "ids")
    birth = d - _dt.timedelta(days=int(age) * 365 + int(age) // 4 + h % 365)
    minutes = 8 * 60 + (h // 365) % (9 * 60)
    return {
        "PatientName": f"SYNTHETIC^PATIENT{index:04d}",
        "PatientID": f"MRN-SYN-{index:04d}",
        "PatientBirthDate": birth.strftime("%Y%m%d"),
        "InstitutionName": "Synthetic General Hospital",
        "InstitutionAddress": "1 Nowhere Road, Synthville",
        "AccessionNumber": f"ACC{(h // 7919) % 10**8:08d}",
        "ReferringPhysicianName": "SYNTHETIC^REFERRER^DR",
        "OperatorsName": "SYNTHETIC^TECHNOLOGIST",
        "StationName": "SYNTH-MR01",
        "DeviceSerialNumber": "SYN-0000001",
        "StudyID": f"SYNSTUDY{index:04d}",
        "StudyDate": d.strftime("%Y%m%d"),
        "StudyTime": f"{minutes // 60:02d}{minutes % 60:02d}00",
        "SeriesDate": d.strftime("%Y%m%d"),
        "AcquisitionDate": d.strftime("%Y%m%d"),
        "ContentDate": d.strftime("%Y%m%d"),
    }


def _identifiers_for(spec: Any, index: int, patient_id: str, seed: int, age: int) -> dict[str, str]:
    blank = {k: "" for k in IDENTIFIER_KEYWORDS}
    if spec is None:
        return blank
    if spec == "fake":
        return fake_identifiers(index, seed=seed, age=age)
    if callable(spec):
        got = spec(index, patient_id)
        if not isinstance(got, Mapping):
            raise ConfigError(f"identifiers callable must return a dict of DICOM keyword -> value; got {got!r}")
        _check_identifiers(dict(got))
        items = got.items()
    else:
        items = spec.items()
    out = dict(blank)
    for k, v in items:
        text = "" if v is None else str(v)
        try:
            text = text.format(index=index, patient_id=patient_id)
        except (KeyError, IndexError, ValueError):
            pass  # not a template: used as given
        out[k] = text
    return out


# ----------------------------------------------------------------------------- geometry
