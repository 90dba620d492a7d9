"""DICOM Segmentation objects of lgenet's masks, and reading them back (highdicom; since 0.3.0).

:func:`write_dicom_seg` turns a class map (0 background, 1 LV cavity, 2 myocardium, 3 enhanced myocardium;
:mod:`lgenet.conventions.labels`), in the apex -> base order of :func:`lgenet.io.dicom.read_dicom_volume`, into a
BINARY DICOM SEG that references every source frame and shares the source's frame of reference, so that 3D Slicer,
OHIF or a PACS shows it over the images. Three coded segments, which overlap as the anatomy does:

===  ======================  ===================================  ========================================
 #   label                   category (SCT)                       type (SCT), anatomic region
===  ======================  ===================================  ========================================
 1   LV blood pool           Anatomical Structure (91723000)      Blood (87612001), in the Left ventricle
 2   LV myocardium           Anatomical Structure (91723000)      Left Ventricle Myocardium (49848007),
                                                                  the whole wall, enhanced part included
 3   Enhanced myocardium     Morphologically Abnormal Structure   Scar (12402003), in the LV myocardium;
                             (49755003)                           late gadolinium enhancement
===  ======================  ===================================  ========================================

The algorithm identification names lgenet, its version and the model. :func:`read_dicom_seg` gives the class map
back in the source's apex -> base order (a SEG edited in 3D Slicer, for ``lgenet segment measure``).

**Identifiers.** A DICOM SEG must carry its source's patient and study attributes (name, ID, birth date, study
UID...) for a viewer to place it beside the images, so these files hold them by nature: they belong with the
source DICOM, not with lgenet's other outputs, which stay keyed by study-local IDs. ``segment apply`` writes them
only when asked (``--dicom-seg``), into their own folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lgenet.errors import ReaderError
from lgenet.io.dicom import _withhold_identifiers, dicom_source_frames

__all__ = ["SEGMENTS", "build_dicom_seg", "save_dicom", "write_dicom_seg", "read_dicom_seg"]

#: (segment number, label, the classes it covers) in the order written
SEGMENTS = ((1, "LV blood pool", (1,)), (2, "LV myocardium", (2, 3)), (3, "Enhanced myocardium", (3,)))


def _descriptions(version: str, model: str):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    algo = hd.AlgorithmIdentificationSequence(
        name="lgenet segment", family=codes.cid7162.ArtificialIntelligence, version=version, parameters={"model": model}
    )
    kinds = (
        (codes.SCT.AnatomicalStructure, codes.SCT.Blood, [codes.SCT.LeftVentricle]),
        (codes.SCT.AnatomicalStructure, codes.SCT.LeftVentricleMyocardium, None),
        (codes.SCT.MorphologicallyAbnormalStructure, codes.SCT.Scar, [codes.SCT.LeftVentricleMyocardium]),
    )
    return [
        hd.seg.SegmentDescription(
            segment_number=n,
            segment_label=label,
            segmented_property_category=cat,
            segmented_property_type=typ,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo,
            anatomic_regions=regions,
        )
        for (n, label, _), (cat, typ, regions) in zip(SEGMENTS, kinds)
    ]


def _sources(source: str | Path):
    """The source datasets and, per slice apex -> base, where it lies among their frames."""
    import pydicom

    frames = dicom_source_frames(source)
    files = list(dict.fromkeys(f for f, _ in frames))
    multi = [f for f, fr in frames if fr is not None]
    if multi and len(files) > 1:
        raise ReaderError(f"{source}: a stack over several multi-frame files cannot be referenced by one DICOM SEG")
    with _withhold_identifiers():
        datasets = [pydicom.dcmread(f) for f in files]
    if multi:  # one multi-frame file: slice k is frame frames[k][1] of it
        return datasets, [fr for _, fr in frames]
    return datasets, list(range(len(files)))  # one file per slice, already apex -> base


def write_dicom_seg(
    source: str | Path,
    classes: np.ndarray,
    out: str | Path,
    *,
    version: str,
    model: str,
    series_number: int = 901,
) -> Path:
    """Write ``classes`` (S, H, W; apex -> base, as read from ``source``) as a DICOM SEG of the DICOM stack at
    ``source`` (a series folder or a multi-frame file) to ``out``; returns ``out``."""
    seg, _ = build_dicom_seg(source, classes, version=version, model=model, series_number=series_number)
    return save_dicom(seg, out)


def save_dicom(ds, out: str | Path) -> Path:
    """Write a DICOM object atomically to ``out``; returns ``out``."""
    from lgenet.utils import atomic_path

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        ds.save_as(tmp)
    return out


def build_dicom_seg(source: str | Path, classes: np.ndarray, *, version: str, model: str, series_number: int = 901):
    """(the highdicom Segmentation of ``classes`` on the DICOM stack at ``source``, the source datasets it
    references): what :func:`write_dicom_seg` writes, and what :func:`lgenet.io.dicom_sr.write_dicom_sr` builds on
    without reading either again."""
    import highdicom as hd

    classes = np.asarray(classes)
    datasets, where = _sources(source)
    n_frames = sum(int(getattr(ds, "NumberOfFrames", 1) or 1) for ds in datasets)
    if classes.ndim != 3 or classes.shape[0] != len(where) or n_frames != len(where):
        raise ReaderError(
            f"{source}: the mask has shape {classes.shape}, the DICOM stack {len(where)} frame(s): they do not match"
        )
    rows, cols = int(datasets[0].Rows), int(datasets[0].Columns)
    if classes.shape[1:] != (rows, cols):
        raise ReaderError(f"{source}: the mask's slices are {classes.shape[1:]}, the images {rows} x {cols}")
    pix = np.zeros((len(where), rows, cols, len(SEGMENTS)), np.uint8)
    for k, fi in enumerate(where):
        for j, (_, _, covers) in enumerate(SEGMENTS):
            pix[fi, ..., j] = np.isin(classes[k], covers)
    with _withhold_identifiers():  # pydicom's warnings may quote header values
        seg = _segmentation(hd, datasets, pix, version, model, series_number)
    return seg, datasets


def _segmentation(hd, datasets, pix, version: str, model: str, series_number: int):
    return hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=pix,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_descriptions(version, model),
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="lgenet",
        manufacturer_model_name="lgenet segment",
        software_versions=version,
        device_serial_number="none",
        content_label="LGENET",
        content_description="LV cavity, myocardium and enhanced myocardium (lgenet)",
        series_description="lgenet segmentation",
        omit_empty_frames=False,
    )


def read_dicom_seg(path: str | Path, source: str | Path) -> np.ndarray:
    """The class map (S, H, W; apex -> base as :func:`lgenet.io.dicom.read_dicom_volume` reads ``source``) of the
    DICOM SEG at ``path``, whose segments are matched by label (:data:`SEGMENTS`)."""
    import highdicom as hd

    datasets, where = _sources(source)
    with _withhold_identifiers():
        try:
            seg = hd.seg.segread(path)
        except Exception as exc:  # the library's message may quote header values
            raise ReaderError(f"{path}: not a readable DICOM SEG ({type(exc).__name__})") from None
    by_label = {d.SegmentLabel: int(d.SegmentNumber) for d in seg.SegmentSequence}
    missing = [label for _, label, _ in SEGMENTS if label not in by_label]
    if missing:
        raise ReaderError(
            f"{path}: the DICOM SEG has no segment labelled {', '.join(map(repr, missing))} "
            f"(it has {', '.join(map(repr, by_label)) or 'none'})"
        )
    numbers = [by_label[label] for _, label, _ in SEGMENTS]
    if len(datasets) == 1 and int(getattr(datasets[0], "NumberOfFrames", 1) or 1) > 1:
        arr = seg.get_pixels_by_source_frame(
            source_sop_instance_uid=datasets[0].SOPInstanceUID,
            source_frame_numbers=[fi + 1 for fi in sorted(where)],
            segment_numbers=numbers,
        )
        arr = arr[[sorted(where).index(fi) for fi in where]]
    else:
        arr = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[ds.SOPInstanceUID for ds in datasets], segment_numbers=numbers
        )
    classes = np.zeros(arr.shape[:3], np.uint8)
    classes[arr[..., 0] > 0] = 1
    classes[arr[..., 1] > 0] = 2
    classes[arr[..., 2] > 0] = 3
    return classes
