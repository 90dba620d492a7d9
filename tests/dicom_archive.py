"""Test-only builder of a messy DICOM archive: several studies, each with the series a CMR exam holds (LGE
short-axis stacks, cine, long-axis views, localisers, non-MR objects), in mixed layouts, with planted
identifiers (``lgenet import dicom`` must pick the right stack per study and write none of them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from dicom_helpers import IDENTIFIERS, UID_ROOT, make_enhanced, make_image, make_report, save, sax_geometry, unit

#: per patient of the archive: its planted identifiers (each must stay out of every output)
PATIENTS = {
    "A": {"PatientID": "MRN10000001", "PatientName": "Quaxley^Anastasia", "PatientBirthDate": "19500101"},
    "B": {"PatientID": "MRN20000002", "PatientName": "Brumblebee^Bartholomew", "PatientBirthDate": "19600202"},
    "C": {"PatientID": "MRN30000003", "PatientName": "Cromwhistle^Cordelia", "PatientBirthDate": "19700303"},
    "D": {"PatientID": "MRN40000004", "PatientName": "Dunderfield^Desmond", "PatientBirthDate": "19800404"},
    "E": {"PatientID": "MRN50000005", "PatientName": "Eggleston^Euphemia", "PatientBirthDate": "19900505"},
}


class Study:
    """One study of one patient: shared UIDs and identifiers for the series written into it."""

    def __init__(self, patient: str, date: str):
        self.patient = patient
        self.ids = {**IDENTIFIERS, **PATIENTS[patient], "StudyDate": date}
        self.study_uid = generate_uid(prefix=UID_ROOT)
        self.frame_uid = generate_uid(prefix=UID_ROOT)
        self.uids: list[str] = [self.study_uid]

    def _stamp(self, ds, series_uid: str, number: int, description: str):
        for k, v in self.ids.items():
            setattr(ds, k, v)
        ds.StudyInstanceUID = self.study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = self.frame_uid
        ds.SeriesNumber = number
        ds.SeriesDescription = description
        self.uids += [series_uid, str(ds.SOPInstanceUID)]
        return ds

    def sax(self, folder, number, *, n=6, kind="magnitude", description="LGE SAX", acq="101500", names=None):
        """An LGE short-axis stack, one file per slice: magnitude IR, PSIR (signed) or a cine (3 phases)."""
        row, col, apex = sax_geometry("apex")
        uid = generate_uid(prefix=UID_ROOT)
        base = np.array([-20.0, -180.0, 40.0])
        paths = []
        phases = 3 if kind == "cine" else 1
        for k in range(n):
            for ph in range(phases):
                pix = np.full((16, 14), 50 + 40 * k, np.int16 if kind == "psir" else np.uint16)
                ds = make_image(
                    pix, position=base + k * 8.0 * apex, orientation=[*row, *col], instance=k * phases + ph + 1
                )
                self._stamp(ds, uid, number, description)
                ds.AcquisitionTime = acq
                if kind == "cine":
                    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
                    ds.ScanningSequence = ["GR"]
                    ds.TriggerTime = 40.0 * ph
                else:
                    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "IR"] if kind == "magnitude" else [
                        "DERIVED", "PRIMARY", "M", "PSIR"]  # fmt: skip
                    ds.ScanningSequence = ["GR", "IR"]
                    ds.InversionTime = 300.0
                    if kind == "psir":
                        ds.PixelRepresentation = 1
                        ds.RescaleIntercept = -4096.0
                        ds.RescaleSlope = 1.0
                name = names[k * phases + ph] if names else f"{number:02d}_{k * phases + ph:03d}.dcm"
                paths.append(save(ds, Path(folder) / name))
        return paths

    def long_axis(self, folder, number, view="4CH"):
        """One long-axis slice: its normal lies perpendicular to the LV's long axis."""
        _, _, apex = sax_geometry("apex")
        row = unit(apex)
        col = unit(np.cross(row, [0.0, 0.0, 1.0]))
        ds = make_image(np.zeros((16, 14), np.uint16), position=[0.0, 0.0, 0.0], orientation=[*row, *col])
        self._stamp(ds, generate_uid(prefix=UID_ROOT), number, f"LGE {view}")
        ds.InversionTime = 300.0
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "IR"]
        return save(ds, Path(folder) / f"{number:02d}_{view}.dcm")

    def localiser(self, folder, number):
        """A tri-plane localiser: three orthogonal planes in one series."""
        uid = generate_uid(prefix=UID_ROOT)
        oris = ([1, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, -1], [0, 1, 0, 0, 0, -1])
        for i, ori in enumerate(oris):
            ds = make_image(np.zeros((16, 14), np.uint16), position=[0.0, 0.0, 0.0], orientation=ori, instance=i + 1)
            self._stamp(ds, uid, number, "tri-pilot")
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "LOCALIZER"]
            save(ds, Path(folder) / f"{number:02d}_loc{i}.dcm")

    def enhanced_sax(self, path, number, n=5):
        """The LGE stack as one Enhanced MR multi-frame object."""
        row, col, apex = sax_geometry("apex")
        base = np.array([-20.0, -180.0, 40.0])
        frames = np.stack([np.full((16, 14), 60 + 30 * k, np.uint16) for k in range(n)])
        ds = make_enhanced(frames, positions=[base + k * 10.0 * apex for k in range(n)], orientation=[*row, *col])
        self._stamp(ds, generate_uid(prefix=UID_ROOT), number, "de_sax_mf")
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "IR"]
        return save(ds, path)

    def other_objects(self, folder):
        """A structured report and a CT image: DICOM objects that are not MR images."""
        sr = self._stamp(make_report(), generate_uid(prefix=UID_ROOT), 99, "report")
        save(sr, Path(folder) / "sr.dcm")
        ct = make_image(np.zeros((8, 8), np.uint16), position=[0, 0, 0], orientation=[1, 0, 0, 0, 1, 0])
        self._stamp(ct, generate_uid(prefix=UID_ROOT), 98, "ct")
        ct.Modality = "CT"
        save(ct, Path(folder) / "ct.dcm")


def strip_preamble(path: Path, new_name: str) -> Path:
    """Rewrite ``path`` without its 128-byte preamble and DICM prefix, under a name without a suffix."""
    data = path.read_bytes()
    out = path.with_name(new_name)
    out.write_bytes(data[132:])
    path.unlink()
    return out


def build_archive(root: Path) -> dict:
    """The messy archive. Returns what the intake should find: per patient letter the kind and slices of the
    expected stack (None: no stack), and every planted identifier and UID."""
    root = Path(root)
    a1 = Study("A", "20190101")
    a1.sax(root / "A" / "s1" / "lge", 7)
    a1.sax(root / "A" / "s1" / "cine", 3, n=4, kind="cine", description="cine sax")
    a1.long_axis(root / "A" / "s1" / "lax", 8, "4CH")
    a1.long_axis(root / "A" / "s1" / "lax", 9, "2CH")
    a1.localiser(root / "A" / "s1" / "loc", 1)
    a1.other_objects(root / "A" / "s1" / "other")
    a2 = Study("A", "20210101")  # a later study of the same patient
    a2.sax(root / "A" / "s2", 7)
    b = Study("B", "20190202")  # a PSIR + magnitude pair
    b.sax(root / "B", 10, kind="magnitude", n=5)
    b.sax(root / "B", 11, kind="psir", n=5, description="LGE SAX PSIR")
    c = Study("C", "20190303")  # a repeated acquisition, and a copy of the first in another folder
    first = c.sax(root / "C" / "first", 12, acq="101000")
    c.sax(root / "C" / "retake", 15, acq="103000")
    (root / "C" / "copy").mkdir(parents=True)
    for p in first:
        (root / "C" / "copy" / p.name).write_bytes(p.read_bytes())
    d = Study("D", "20190404")  # mixed in one flat folder with E: a multi-frame LGE, files without preamble
    mixed = root / "mixed"
    d.enhanced_sax(mixed / "x1.dcm", 5)
    for p in d.sax(mixed, 6, kind="cine", n=3, description="cine"):
        strip_preamble(p, "IMG" + p.stem.replace("_", ""))
    e = Study("E", "20190505")  # only cine and long-axis views: nothing to import
    e.sax(mixed, 4, kind="cine", n=4, description="sax cine")
    e.long_axis(mixed, 5, "3CH")
    (root / "README.txt").write_text("exported from the archive\n")
    planted = [v for p in PATIENTS.values() for v in p.values()] + [v for v in IDENTIFIERS.values()]
    planted += [s.study_uid for s in (a1, a2, b, c, d, e)] + [u for s in (a1, a2, b, c, d, e) for u in s.uids]
    planted += ["20190101", "20210101", "20190202", "20190303", "20190404", "20190505"]
    return {
        "expected": {"A": ("magnitude", 6), "B": ("magnitude", 5), "C": ("magnitude", 6), "D": ("magnitude", 5)},
        "planted": sorted(set(planted)),
    }
