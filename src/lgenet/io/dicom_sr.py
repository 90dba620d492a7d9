"""A DICOM SR measurement report (TID 1500) of one patient's LGE measures, on its DICOM SEG (highdicom; since 0.3.0).

Each measure references the segment of the SEG (:mod:`lgenet.io.dicom_seg`) it was measured on:

* LV myocardium (segment 2): volume (ml), mass (g, at 1.05 g/ml), LGE % of the myocardium (whole LV, and the basal
  slice), and, per AHA segment (:mod:`lgenet.quantify.aha`, with its SNOMED CT code as the finding site), the
  enhanced share of that segment's myocardium and its largest transmurality;
* enhanced myocardium (segment 3): volume and mass;
* LV blood pool (segment 1): volume.

Standard codes where they exist (SNOMED CT Volume and Mass, UCUM units, the AHA segments); the LGE burden has no
standard code, so its concepts use lgenet's private coding scheme ``99LGENET`` (the ``99`` prefix DICOM reserves for
private schemes), listed in :data:`LGENET_CODES`. The AHA orientation's approximation is written in the report as a
method note. Like the SEG, the SR carries its source's patient and study identifiers (a viewer needs them) and is
written only when asked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from lgenet.io.dicom import _withhold_identifiers

__all__ = ["LGENET_CODES", "write_dicom_sr"]

#: lgenet's private codes (scheme 99LGENET): value -> meaning
LGENET_CODES = {
    "LGE-PCT": "Enhanced myocardium, percent of LV myocardium",
    "LGE-PCT-BASAL": "Enhanced myocardium, percent of LV myocardium, basal slice",
    "LGE-PCT-SEG": "Enhanced myocardium, percent of the AHA segment's myocardium",
    "TRANSMURALITY-MAX": "Largest transmural extent of enhancement in the segment",
    "AHA-APPROX": "AHA segments oriented by the image's patient axes (approximate)",
    "AHA-GIVEN": "AHA segments oriented by a given anterior RV insertion",
}
_AHA_CODE_NAMES = {
    ("basal", "anterior"): "LeftVentricleBasalAnteriorSegment",
    ("basal", "anteroseptal"): "LeftVentricleBasalAnteroseptalSegment",
    ("basal", "inferoseptal"): "LeftVentricleBasalInferoseptalSegment",
    ("basal", "inferior"): "LeftVentricleBasalInferiorSegment",
    ("basal", "inferolateral"): "LeftVentricleBasalInferolateralSegment",
    ("basal", "anterolateral"): "LeftVentricleBasalAnterolateralSegment",
    ("mid", "anterior"): "LeftVentricleMidAnteriorSegment",
    ("mid", "anteroseptal"): "LeftVentricleMidAnteroseptalSegment",
    ("mid", "inferoseptal"): "LeftVentricleMidInferoseptalSegment",
    ("mid", "inferior"): "LeftVentricleMidInferiorSegment",
    ("mid", "inferolateral"): "LeftVentricleMidInferolateralSegment",
    ("mid", "anterolateral"): "LeftVentricleMidAnterolateralSegment",
    ("apical", "anterior"): "LeftVentricleApicalAnteriorSegment",
    ("apical", "septal"): "LeftVentricleApicalSeptalSegment",
    ("apical", "inferior"): "LeftVentricleApicalInferiorSegment",
    ("apical", "lateral"): "LeftVentricleApicalLateralSegment",
}


def _code(value: str):
    import highdicom as hd

    return hd.sr.CodedConcept(value=value, scheme_designator="99LGENET", meaning=LGENET_CODES[value])


def _finite(v) -> bool:
    return v is not None and isinstance(v, int | float) and math.isfinite(float(v))


def write_dicom_sr(
    seg,
    sources: Sequence,
    measures: Mapping[str, float],
    out: str | Path,
    *,
    version: str,
    aha: Sequence[Mapping] = (),
    aha_orientation: str = "",
    series_number: int = 902,
) -> Path:
    """Write the SR of ``measures`` (keys of :func:`lgenet.evaluation.segmentation.class_measures`: ``myo_ml``,
    ``myo_mass_g``, ``enh_ml``, ``enh_mass_g``, ``cavity_ml``, ``lge_percent``, ``lge_percent_basal``) and the AHA
    rows (:class:`lgenet.quantify.aha.AhaResult.segments`) on ``seg`` (the highdicom Segmentation of
    :func:`lgenet.io.dicom_seg.build_dicom_seg`) and its ``sources`` (the source datasets); returns ``out``."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    from lgenet.utils import atomic_path

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=hd.UID(), name="lgenet", manufacturer_name="lgenet", model_name=f"lgenet segment {version}"
    )
    context = hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.DCM.Device, observer_identifying_attributes=device
        )
    )
    algo = hd.sr.AlgorithmIdentification(name="lgenet segment", version=version)

    def m(name, key: str, unit):
        v = measures.get(key)
        return [hd.sr.Measurement(name=name, value=float(v), unit=unit, algorithm_id=algo)] if _finite(v) else []

    ml = hd.sr.CodedConcept(value="mL", scheme_designator="UCUM", meaning="milliliter")
    g = hd.sr.CodedConcept(value="g", scheme_designator="UCUM", meaning="gram")
    pct = codes.UCUM.Percent
    groups = []

    def group(segment: int, label: str, meas: list, finding_sites=None, method=None):
        if meas:
            groups.append(
                hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                    tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=label),
                    referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, segment_number=segment),
                    finding_sites=finding_sites,
                    method=method,
                    measurements=meas,
                    algorithm_id=algo,
                )
            )

    group(
        2,
        "LV myocardium",
        m(codes.SCT.Volume, "myo_ml", ml)
        + m(codes.SCT.Mass, "myo_mass_g", g)
        + m(_code("LGE-PCT"), "lge_percent", pct)
        + m(_code("LGE-PCT-BASAL"), "lge_percent_basal", pct),
    )
    group(3, "Enhanced myocardium", m(codes.SCT.Volume, "enh_ml", ml) + m(codes.SCT.Mass, "enh_mass_g", g))
    group(1, "LV blood pool", m(codes.SCT.Volume, "cavity_ml", ml))
    method = _code("AHA-GIVEN" if aha_orientation.startswith("given") else "AHA-APPROX")
    for row in aha:
        site = hd.sr.FindingSite(anatomic_location=getattr(codes.SCT, _AHA_CODE_NAMES[(row["level"], row["name"])]))
        meas = []
        for code, key in (("LGE-PCT-SEG", "lge_percent"), ("TRANSMURALITY-MAX", "transmurality_max")):
            if _finite(row.get(key)):
                meas.append(hd.sr.Measurement(name=_code(code), value=float(row[key]), unit=pct, algorithm_id=algo))
        group(2, f"AHA segment {row['segment']}", meas, finding_sites=[site], method=method)
    report = hd.sr.MeasurementReport(
        observation_context=context,
        procedure_reported=hd.sr.CodedConcept(
            value="241620005", scheme_designator="SCT", meaning="Magnetic resonance imaging of heart"
        ),
        imaging_measurements=groups,
    )
    with _withhold_identifiers():  # pydicom's warnings may quote header values
        sr = hd.sr.Comprehensive3DSR(
            evidence=[*sources, seg],
            content=report[0],
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="lgenet",
            is_complete=True,
            series_description="lgenet LGE measurements",
        )
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:
            sr.save_as(tmp)
    return out
