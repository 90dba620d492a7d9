"""Copy EMIDEC with its images stored as int16 NIfTI, for a device call's 64 MiB working-tree limit.

    python bench/emidec_int16.py ../shared/data/emidec runs/emidec_data

EMIDEC's images are float64 NIfTI that hold integers 0-4095; as int16 they are the same values in 47 MB
instead of 65 MB. Every image is checked after the round trip (voxels and affine equal) and refused if it
holds a non-integer or out-of-range value; masks, clinical files and the top-level files are copied as they are.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np


def main(src: str, dst: str) -> int:
    src_p, dst_p = Path(src), Path(dst)
    cases = sorted(p for p in src_p.glob("Case_*") if p.is_dir())
    if not cases:
        sys.exit(f"{src_p}: no Case_* folders (the EMIDEC layout); pass the folder that holds them")
    dst_p.mkdir(parents=True, exist_ok=True)
    for f in src_p.iterdir():
        if f.is_file():
            shutil.copy2(f, dst_p / f.name)
    for case in cases:
        out = dst_p / case.name
        for f in case.rglob("*"):
            if f.is_file() and f.parent.name != "Images":
                (out / f.relative_to(case)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, out / f.relative_to(case))
        for f in (case / "Images").glob("*.nii*"):
            im = nib.load(f)
            d = np.asanyarray(im.dataobj)
            if not (np.all(d == np.round(d)) and d.min() >= -32768 and d.max() <= 32767):
                sys.exit(f"{f}: values are not int16 integers; copy this dataset as it is instead")
            target = out / "Images" / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            new = nib.Nifti1Image(d.astype(np.int16), im.affine, im.header)
            new.set_data_dtype(np.int16)
            nib.save(new, target)
            back = nib.load(target)
            if not (np.array_equal(back.get_fdata(), im.get_fdata()) and np.allclose(back.affine, im.affine)):
                sys.exit(f"{f}: the int16 copy differs from the original")
    print(
        f"{len(cases)} cases -> {dst_p} ({sum(p.stat().st_size for p in dst_p.rglob('*') if p.is_file()) / 1e6:.0f} MB)"
    )
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
